"""Storing a request's events: one INSERT ... ON CONFLICT (insert_id, timestamp) DO NOTHING.

Rows are inserted in request order; an ``insert_id`` already stored, or repeated earlier in
the same request, conflicts and is skipped (DO NOTHING also sees rows inserted earlier by
the same statement), so the first occurrence wins. The statement's row count is what was
new: skipped rows are not counted.

The dedup key includes ``timestamp``, the event's own time (on PostgreSQL the table is
partitioned by it, and a unique key must include the partition key): a ``cli_invocation``
resend carries the same time (its ``startedAt`` when it has no ``timestamp``), lands in
the same partition and conflicts there. Any other row — another event type, whose id
need not move with its time (an award's comes from its ``awardId``), or a row timed only
by its arrival (``now``) — is also skipped when its ``insert_id`` is stored at any time:
one probe of each partition's dedup index, for those rare rows only.
"""

import json
from datetime import datetime

from django.db import connection

from scoring.ingest.events import CLI_INVOCATION, Row
from scoring.models import ApiKey, TelemetryEvent

_COLUMNS = (
    "insert_id",
    "event",
    "distinct_id",
    "timestamp",
    "properties",
    "api_key",
    "member",
    "received_at",
    "status",
    "error",
    "late",
    "cli_version",
    "drift",
)
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _names() -> tuple[str, str, str, str]:
    meta = TelemetryEvent._meta
    qn = connection.ops.quote_name
    columns = ", ".join(qn(meta.get_field(name).column) for name in _COLUMNS)
    insert_id, timestamp = (qn(meta.get_field(name).column) for name in ("insert_id", "timestamp"))
    return qn(meta.db_table), columns, insert_id, timestamp


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
    table, columns, insert_id_column, timestamp_column = _names()
    constants = [
        api_key.pk,
        api_key.owner_id,
        now,
        TelemetryEvent.Status.PENDING,
        "",
        False,
        cli_version,
    ]
    if connection.vendor == "postgresql":
        if events_json is None:
            events_json = _dumps([_event_of(row) for row in rows])
            events_sql = "%s::jsonb"
        elif batch:
            events_sql = "%s::jsonb -> 'events'"
        else:
            events_sql = "jsonb_build_array(%s::jsonb)"
        sql = (
            # Identifiers come from the model and are quoted; every value is a parameter.
            f"INSERT INTO {table} ({columns}) "  # noqa: S608
            "SELECT r.m ->> 0, r.b ->> 'event', r.b ->> 'distinct_id', "
            "(r.m ->> 1)::timestamptz, r.b -> 'properties', %s, %s, %s, %s, %s, %s, %s, "
            "CASE WHEN json_typeof(r.m -> 2) = 'array' THEN (r.m -> 2)::jsonb END "
            "FROM ROWS FROM (json_array_elements(%s::json), "
            f"jsonb_array_elements({events_sql})) WITH ORDINALITY AS r(m, b, n) "
            f"WHERE r.m -> 3 IS NULL OR NOT EXISTS (SELECT 1 FROM {table} e "
            f"WHERE e.{insert_id_column} = r.m ->> 0) "
            f"ORDER BY r.n ON CONFLICT ({insert_id_column}, {timestamp_column}) DO NOTHING"
        )
        # A fourth element marks a row deduplicated by insert_id alone (the module's doc).
        meta = _dumps(
            [
                [row[0], row[3].isoformat(), row[5], *((1,) if _by_id(row, now) else ())]
                for row in rows
            ]
        )
        params = [*constants, meta, events_json]
    else:
        # SQLite: the rows travel as one JSON array, unpacked by json_each in order.
        # ``WHERE true`` resolves SQLite's parsing ambiguity between an upsert's ON CONFLICT
        # and a join constraint after INSERT ... SELECT.
        adapt = connection.ops.adapt_datetimefield_value
        constants[2] = adapt(now)
        sql = (
            f"INSERT INTO {table} ({columns}) "  # noqa: S608
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
            "json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
            "json_extract(value, '$[4]'), %s, %s, %s, %s, %s, %s, %s, "
            "json_extract(value, '$[5]') "
            "FROM json_each(%s) WHERE json_extract(value, '$[6]') IS NULL OR NOT EXISTS "
            f"(SELECT 1 FROM {table} e WHERE e.{insert_id_column} = json_extract(value, '$[0]')) "
            f"ORDER BY key ON CONFLICT ({insert_id_column}, {timestamp_column}) DO NOTHING"
        )
        params = [
            *constants,
            _dumps(
                [
                    [*row[:3], adapt(row[3]), *row[4:], *((1,) if _by_id(row, now) else ())]
                    for row in rows
                ]
            ),
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # The row count of INSERT ... ON CONFLICT DO NOTHING counts only inserted rows.
        return cursor.rowcount


def conflict_keys_lock(keys: list[str]) -> None:
    """Hold a lock on each of ``keys`` (sorted) until the current transaction ends.

    PostgreSQL: one statement taking transaction-scoped advisory locks on a 64-bit hash of
    each key, in the order given (the array is scanned in order), so a concurrent request
    naming one of them waits for this transaction to commit or roll back; its next
    statements (READ COMMITTED) then see what this one stored. A hash collision only makes
    two requests wait for each other. SQLite needs nothing: the project opens transactions
    with ``BEGIN IMMEDIATE``, which already takes the database's single write lock.
    """
    if not keys or connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
            "FROM unnest(%s::text[]) AS k",
            [keys],
        )


def _by_id(row: Row, now: datetime) -> bool:
    """True when ``row`` must also be new by ``insert_id`` alone (the module's doc)."""
    return row[1] != CLI_INVOCATION or row[3] is now


def _event_of(row: Row) -> dict:
    _insert_id, name, distinct_id, _timestamp, properties, _drift = row
    return {"event": name, "distinct_id": distinct_id, "properties": properties}
