"""Telemetry retention on PostgreSQL: old partitions exported to gzipped CSV, then dropped.

The metrics already hold everything scoring needs, so raw events are kept for
``TELEMETRY_RETENTION_MONTHS`` only. The horizon is the first day of the current month
(UTC) minus that many months. Each monthly partition that ends at or before the horizon is

1. detached from the events table — in a transaction that first checks the partition holds
   no pending event (else it stays, and is tried again next time);
2. written whole to ``TELEMETRY_ARCHIVE_DIR/<partition>.csv.gz`` (``COPY … TO STDOUT`` in
   CSV with a header, streamed through gzip; written to a temporary name, flushed to disk
   and renamed, so a file under the final name is always complete);
3. dropped.

A crash between the steps leaves a detached table, which the next run finds by its name
and finishes (export, drop). Rows of the DEFAULT partition older than the horizon (events
that arrived dated before any partition) that are no longer pending are moved out the same
way, by ``COPY (DELETE … RETURNING *)``: exported and deleted in one transaction, committed
only once the file is on disk.

An event resent after its partition was dropped is accepted and stored again as a late
event (it is far beyond ``TELEMETRY_MAX_AGE_DAYS``, so it is never counted) in the DEFAULT
partition, and leaves with the next run (docs/guarantees.md).
"""

import gzip
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper

from scoring.models import PendingEvent
from scoring.partitions import (
    DEFAULT,
    NAME_PATTERN,
    PARENT,
    Partition,
    maintenance_lock,
    month_start,
    partitioned,
    partitions_list,
)

logger = logging.getLogger("swampclub.retention")
# How long a detach waits for its moment of exclusive lock on the events table.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class Retired:
    """Rows taken out of the database and the file that now holds them."""

    name: str
    rows: int
    path: Path


def retention_horizon(now: datetime | None = None, months: int | None = None) -> datetime:
    """The instant before which events are retired (a month start, UTC).

    Refuses (``ImproperlyConfigured``) a horizon that would reach events younger than
    ``TELEMETRY_MAX_AGE_DAYS``: those may still be counted.
    """
    now = now or datetime.now(UTC)
    months = settings.TELEMETRY_RETENTION_MONTHS if months is None else months
    horizon = month_start(now, -months)
    if horizon > now - timedelta(days=settings.TELEMETRY_MAX_AGE_DAYS):
        raise ImproperlyConfigured(
            "TELEMETRY_RETENTION_MONTHS must reach beyond TELEMETRY_MAX_AGE_DAYS"
        )
    return horizon


def archive_dir(directory: Path | str | None = None) -> Path:
    """The export directory (``TELEMETRY_ARCHIVE_DIR`` unless given), created if missing."""
    path = Path(directory or settings.TELEMETRY_ARCHIVE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def copy_to_gzip(sql: str, path: Path, params: list | None = None) -> int:
    """Stream ``COPY (…) TO STDOUT`` output ``sql`` into the gzip file ``path``; return rows.

    Written to ``path`` + ``.partial``, flushed and fsynced, then renamed over ``path``.
    """
    partial = path.with_name(path.name + ".partial")
    with connection.cursor() as cursor:
        with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as gz:
            with cursor.copy(sql, params) as copy:
                for chunk in copy:
                    gz.write(chunk)
            rows = cursor.rowcount
        with open(partial, "rb+") as done:
            os.fsync(done.fileno())
    os.replace(partial, path)
    return rows


def _detached_leftovers() -> list[str]:
    """Tables named like monthly partitions that are not attached (a run stopped midway)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname LIKE %s "
            "AND NOT c.relispartition",
            [f"{PARENT}\\_p%"],
        )
        return sorted(row[0] for row in cursor.fetchall() if NAME_PATTERN.match(row[0]))


def _detach(partition: Partition) -> bool:
    """Detach ``partition`` unless it still holds a pending event; True when detached.

    Detaching locks the events table exclusively for a moment; a lock not granted within
    ``LOCK_TIMEOUT`` (a long transaction on the table) gives up rather than queue ingest
    behind it, and the partition is tried again on the next run.
    """
    qn = connection.ops.quote_name
    try:
        with transaction.atomic():
            maintenance_lock()
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                cursor.execute(f"ALTER TABLE {qn(PARENT)} DETACH PARTITION {qn(partition.name)}")
                return _pending_check(cursor, partition)
    except OperationalError as exc:
        logger.warning("partition %s not detached now: %s", partition.name, exc)
        return False


def _pending_check(cursor: CursorWrapper, partition: Partition) -> bool:
    """False (and the detach rolled back) when the detached ``partition`` holds pending
    events: queued ones of its month (the queue is narrow and holds only pending events)."""
    cursor.execute(
        f"SELECT 1 FROM {connection.ops.quote_name(PendingEvent._meta.db_table)} "  # noqa: S608
        'WHERE "timestamp" >= %s AND "timestamp" < %s LIMIT 1',
        [partition.start, partition.end],
    )
    if cursor.fetchone() is None:
        return True
    transaction.set_rollback(True)
    logger.warning("partition %s still holds pending events; kept", partition.name)
    return False


def _export_and_drop(name: str, directory: Path) -> Retired:
    qn = connection.ops.quote_name
    path = directory / f"{name}.csv.gz"
    rows = copy_to_gzip(f"COPY {qn(name)} TO STDOUT (FORMAT csv, HEADER true)", path)
    with transaction.atomic(), connection.cursor() as cursor:
        # Deferred foreign-key checks of rows written earlier in an enclosing transaction
        # must run first: PostgreSQL refuses to drop a table with pending trigger events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"DROP TABLE {qn(name)}")
    logger.info("retired %s: %d events written to %s", name, rows, path)
    return Retired(name, rows, path)


def _default_retire(horizon: datetime, directory: Path) -> Retired | None:
    """Export and delete the DEFAULT partition's rows older than ``horizon``, not pending."""
    qn = connection.ops.quote_name
    name = f"{DEFAULT}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    path = directory / f"{name}.csv.gz"
    with transaction.atomic():
        maintenance_lock()
        rows = copy_to_gzip(
            f"COPY (DELETE FROM {qn(DEFAULT)} e WHERE timestamp < %s AND NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {qn(PendingEvent._meta.db_table)} q WHERE q.event_id = e.id) "
            "RETURNING e.*) TO STDOUT (FORMAT csv, HEADER true)",
            path,
            [horizon],
        )
    if not rows:
        path.unlink()
        return None
    logger.info("retired %d old events of %s to %s", rows, DEFAULT, path)
    return Retired(name, rows, path)


def partitions_retire(
    *, now: datetime | None = None, directory: Path | str | None = None
) -> list[Retired]:
    """Export and drop every processed partition older than the retention horizon.

    Returns what was retired, oldest first; a partition still holding pending events is
    kept. Does nothing on SQLite (one plain table, no retention).
    """
    if not partitioned():
        return []
    horizon = retention_horizon(now)
    target = archive_dir(directory)
    retired = [_export_and_drop(name, target) for name in _detached_leftovers()]
    for partition in partitions_list():
        if partition.end <= horizon and _detach(partition):
            retired.append(_export_and_drop(partition.name, target))
    default = _default_retire(horizon, target)
    if default is not None:
        retired.append(default)
    return retired
