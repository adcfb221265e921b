"""Storing a request's events: one INSERT ... ON CONFLICT (insert_id, timestamp) DO NOTHING.

Rows are inserted in request order; a deduplication key already stored, or repeated earlier
in the same request, conflicts and is skipped (DO NOTHING also sees rows inserted earlier by
the same statement), so the first occurrence wins. The statement's row count is what was
new: skipped rows are not counted. The statement itself, for each database, is
``swampclub.dialect.events_insert_rows``.

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
from django.db import connection

from scoring.columns import column
from scoring.ingest.cli_invocation import CLI_INVOCATION
from scoring.ingest.envelope import Row
from scoring.models import ApiKey, TelemetryEvent
from swampclub.dialect import events_insert_rows

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


def _names() -> tuple[str, str, str, str]:
    meta = TelemetryEvent._meta
    qn = connection.ops.quote_name
    columns = ", ".join(qn(column(TelemetryEvent, name)) for name in _COLUMNS)
    conflict = ", ".join(qn(column(TelemetryEvent, name)) for name in DEDUP_KEY)
    return qn(meta.db_table), columns, conflict, qn(column(TelemetryEvent, "insert_id"))


def events_insert(
    *,
    api_key: ApiKey,
    rows: list[Row],
    now: datetime,
    events_json: str | None,
    batch: bool,
    cli_version: str = "",
) -> int:
    """Insert ``rows`` for ``api_key``'s owner in one statement; return how many were new.

    ``events_json`` is the JSON text the rows were validated from (the request body: an
    event, or a batch object when ``batch``) or None. On PostgreSQL the properties are
    taken from that text by the server, so they are never re-encoded in Python; only each
    row's ``insert_id``, normalized timestamp and drifted fields travel beside it.
    ``cli_version`` (from the request's User-Agent) is stored with every row.
    """
    table, columns, conflict, insert_id = _names()
    return events_insert_rows(
        table=table,
        columns=columns,
        conflict=conflict,
        insert_id=insert_id,
        by_id=[row[1] != CLI_INVOCATION or row[3] is now for row in rows],
        constants=[
            api_key.pk,
            api_key.owner_id,
            now,
            "",
            False,
            cli_version,
        ],
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
