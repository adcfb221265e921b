"""Monthly partitions of the events table on PostgreSQL: named, listed, created ahead.

``scoring_telemetryevent`` is partitioned by range of ``timestamp`` (the event's own time,
migration ``0007_i18_partitioned_events``): one partition per calendar month in UTC,
``scoring_telemetryevent_pYYYY_MM``, plus ``scoring_telemetryevent_default`` for rows no
monthly partition covers (events older than the oldest partition), so an insert is never
refused for lack of a partition. Beat creates the current month and the next
``TELEMETRY_PARTITIONS_AHEAD`` ahead (``partitions_create_ahead``, idempotent); retention
retires old ones (``scoring.retention``). On SQLite the table is a plain table and every
function here does nothing.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction

from scoring.models import TelemetryEvent

PARENT = TelemetryEvent._meta.db_table
DEFAULT = f"{PARENT}_default"
NAME_PATTERN = re.compile(rf"^{PARENT}_p(\d{{4}})_(\d{{2}})$")
# Partition maintenance (creation, retirement) runs one at a time across processes.
LOCK_KEY = "scoring.telemetry_partitions"
# Storage parameters of every partition (a partitioned table holds none itself): vacuum
# after a small share of dead rows, as migration 0004 set for the plain table.
STORAGE = (
    "autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 10000, "
    "autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_insert_threshold = 10000, "
    "autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 10000"
)


@dataclass(frozen=True)
class Partition:
    """One monthly partition: ``start`` inclusive, ``end`` exclusive (UTC month bounds)."""

    name: str
    start: datetime
    end: datetime


def month_start(moment: datetime, offset: int = 0) -> datetime:
    """The first instant (UTC) of ``moment``'s month, moved by ``offset`` months."""
    moment = moment.astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 + offset
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_for(start: datetime) -> Partition:
    """The monthly partition beginning at ``start`` (a month start)."""
    return Partition(f"{PARENT}_p{start:%Y_%m}", start, month_start(start, 1))


def partitioned() -> bool:
    """True when the events table is a partitioned table (PostgreSQL after migration 0007)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def partitions_list() -> list[Partition]:
    """The attached monthly partitions, oldest first (the DEFAULT partition is not listed)."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
            "WHERE h.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        match = NAME_PATTERN.match(name)
        if match:
            found.append(partition_for(datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)))
    return sorted(found, key=lambda p: p.start)


def maintenance_lock() -> None:
    """Hold the partition-maintenance lock until the current transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [LOCK_KEY])


def _bounds(partition: Partition) -> str:
    return f"FROM ('{partition.start.isoformat()}') TO ('{partition.end.isoformat()}')"


def partition_create(partition: Partition) -> bool:
    """Create ``partition`` unless it exists; return whether it was created.

    Rows of its month already in the DEFAULT partition (the month arrived before its
    partition did) are moved into it in the same transaction, so creating a partition
    late never fails and never loses a row.
    """
    qn = connection.ops.quote_name
    with transaction.atomic():
        maintenance_lock()
        if partition.name in {p.name for p in partitions_list()}:
            return False
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT 1 FROM {qn(DEFAULT)} WHERE timestamp >= %s AND timestamp < %s LIMIT 1",  # noqa: S608
                [partition.start, partition.end],
            )
            strays = cursor.fetchone() is not None
            if not strays:
                cursor.execute(
                    f"CREATE TABLE {qn(partition.name)} PARTITION OF {qn(PARENT)} "
                    f"FOR VALUES {_bounds(partition)} WITH ({STORAGE})"
                )
                return True
            cursor.execute(
                f"CREATE TABLE {qn(partition.name)} (LIKE {qn(PARENT)} INCLUDING DEFAULTS) "
                f"WITH ({STORAGE})"
            )
            cursor.execute(
                f"WITH moved AS (DELETE FROM {qn(DEFAULT)} "  # noqa: S608
                "WHERE timestamp >= %s AND timestamp < %s RETURNING *) "
                f"INSERT INTO {qn(partition.name)} SELECT * FROM moved",
                [partition.start, partition.end],
            )
            cursor.execute(
                f"ALTER TABLE {qn(PARENT)} ATTACH PARTITION {qn(partition.name)} "
                f"FOR VALUES {_bounds(partition)}"
            )
    return True


def partitions_create_ahead(*, now: datetime | None = None, months: int | None = None) -> list[str]:
    """Make sure the current month and the next ``months`` have partitions (default:
    ``TELEMETRY_PARTITIONS_AHEAD``); return the names created. Idempotent."""
    if not partitioned():
        return []
    now = now or datetime.now(UTC)
    months = settings.TELEMETRY_PARTITIONS_AHEAD if months is None else months
    created = []
    for offset in range(months + 1):
        partition = partition_for(month_start(now, offset))
        if partition_create(partition):
            created.append(partition.name)
    return created
