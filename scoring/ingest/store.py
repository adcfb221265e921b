"""Storing a request's events: a COPY of the new rows, or one INSERT ... ON CONFLICT.

On PostgreSQL, when ``INGEST_COPY_MIN_EVENTS`` is set, a request of at least that many
events is stored by
``swampclub.dialect.events_copy_new``: one indexed query finds which of its keys are stored
already, later repeats of a key within the request are dropped, and the new rows go in with
one ``COPY``, which inserts rows in batches where the INSERT below inserts them one by one,
speculatively, into the heap and every index. When a concurrent resend stores one of the
keys between the look-up and the COPY (a unique violation), the COPY is rolled back and the
INSERT below stores the request instead, so the counts stay exact. Smaller requests, and
SQLite, take the INSERT: one statement, no look-up. The COPY is off by default: on the
benchmark's busy 2-core machine it cost more CPU than it saved (docs/performance.md,
"Ingest: the COPY store").

With either, rows are stored in request order; a deduplication key already stored, or
repeated earlier in the same request, is skipped (DO NOTHING also sees rows inserted earlier
by the same statement), so the first occurrence wins; what was new is ``accepted``, the
rest duplicates. The statements, for each database, are in ``swampclub.dialect``.

The dedup key includes ``timestamp``, the event's own time (on PostgreSQL the table is
partitioned by it, and a unique key must include the partition key): a ``cli_invocation``
resend carries the same time (its ``startedAt`` when it has no ``timestamp``), lands in
the same partition and conflicts there. Any other row — another event type, whose id
need not move with its time (an award's comes from its ``awardId``), or a row timed only
by its arrival (``now``) — is also skipped when its ``insert_id`` is stored at any time:
one probe of each partition's dedup index, for those rare rows only.
"""

from datetime import datetime
from typing import Any

import msgspec
from django.conf import settings
from django.db import connection

from scoring.columns import column
from scoring.ingest.cli_invocation import CLI_INVOCATION
from scoring.ingest.envelope import Row
from scoring.models import ApiKey, TelemetryEvent
from swampclub.dialect import events_copy_new, events_insert_rows

# The unique key ON CONFLICT names: the columns deduplication is decided on.
DEDUP_KEY = ("insert_id", "timestamp")

_COLUMNS = (
    "insert_id",
    "event",
    "distinct_id",
    "timestamp",
    "properties",
    "api_key",
    "member",
    "received_at",
    "error",
    "late",
    "cli_version",
    "drift",
)


def _names() -> tuple[str, str, str, str, str]:
    meta = TelemetryEvent._meta
    qn = connection.ops.quote_name
    columns = ", ".join(qn(column(TelemetryEvent, name)) for name in _COLUMNS)
    conflict = ", ".join(qn(column(TelemetryEvent, name)) for name in DEDUP_KEY)
    return (
        qn(meta.db_table),
        columns,
        conflict,
        qn(column(TelemetryEvent, "insert_id")),
        qn(column(TelemetryEvent, "timestamp")),
    )


def events_insert(
    *,
    api_key: ApiKey,
    rows: list[Row],
    now: datetime,
    events_json: str | None,
    batch: bool,
    cli_version: str = "",
) -> int:
    """Store the new ``rows`` for ``api_key``'s owner; return how many were new.

    ``events_json`` is the JSON text the rows were validated from (the request body: an
    event, or a batch object when ``batch``) or None. The properties are stored from that
    text as sent, never re-encoded in Python: the COPY gets each event's raw ``properties``
    text, the INSERT has the server take them from the whole text. ``cli_version`` (from
    the request's User-Agent) is stored with every row.
    """
    table, columns, conflict, insert_id, timestamp = _names()
    by_id = [row[1] != CLI_INVOCATION or row[3] is now for row in rows]
    constants = [
        api_key.pk,
        api_key.owner_id,
        now,
        "",
        False,
        cli_version,
    ]
    copy_min = settings.INGEST_COPY_MIN_EVENTS
    if copy_min and len(rows) >= copy_min:
        copied = events_copy_new(
            table=table,
            columns=columns,
            insert_id=insert_id,
            timestamp=timestamp,
            by_id=by_id,
            constants=constants,
            rows=rows,
            properties=lambda: _properties_texts(rows, events_json, batch),
        )
        if copied is not None:
            return copied
    return events_insert_rows(
        table=table,
        columns=columns,
        conflict=conflict,
        insert_id=insert_id,
        by_id=by_id,
        constants=constants,
        rows=rows,
        events_json=events_json,
        batch=batch,
        raw_properties=lambda: _raw_properties(events_json, batch),
    )


class _RawEvent(msgspec.Struct):
    properties: msgspec.Raw


class _RawBatch(msgspec.Struct):
    events: list[_RawEvent]


def _raw_properties(events_json: str | None, batch: bool) -> list[Any]:
    """The raw JSON text of each event's ``properties`` in the request's text, in order:
    stored as sent by a store that cannot take them from the text itself (SQLite)."""
    if events_json is None:
        raise ValueError("rows without properties need the request's text")
    if batch:
        return [
            event.properties for event in msgspec.json.decode(events_json, type=_RawBatch).events
        ]
    return [msgspec.json.decode(events_json, type=_RawEvent).properties]


def _properties_texts(rows: list[Row], events_json: str | None, batch: bool) -> list[str]:
    """Each row's properties as JSON text: as sent in the request's text, else encoded."""
    if events_json is None:
        return [msgspec.json.encode(row[4]).decode() for row in rows]
    return [bytes(raw).decode() for raw in _raw_properties(events_json, batch)]
