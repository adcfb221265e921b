"""Ingest and the clients summary: the events INSERT and COPY, advisory locks, JSON array
items."""

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

import msgspec
from django.db import IntegrityError, OperationalError, connection, transaction
from psycopg import errors as pg_errors

from swampclub.dialect.prepared import prepared_cursor
from swampclub.dialect.vendor import is_postgresql


def events_insert_rows(
    *,
    table: str,
    columns: str,
    conflict: str,
    insert_id: str,
    by_id: Sequence[bool],
    constants: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    events_json: str | None,
    batch: bool,
    raw_properties: Callable[[], Sequence[Any]],
) -> int:
    """The events INSERT: ``rows`` in order, each skipped when its ``conflict`` key is taken
    (also by a row earlier in the statement: the first occurrence wins); returns how many
    were new. ``table``, ``columns`` (the row's five, the ``constants``', then drift) and
    ``conflict`` are quoted identifiers; a row is ``(insert_id, event, distinct_id,
    timestamp, properties or None, drift)``. A row whose ``by_id`` flag is set is also
    skipped when its ``insert_id`` (the quoted column ``insert_id``) is stored at all.

    PostgreSQL takes ``event``, ``distinct_id`` and ``properties`` from ``events_json`` (the
    request's text: an event, or a batch object when ``batch``), zipped by position with a
    small JSON array of each row's ``insert_id``, timestamp and drift, so properties are
    never re-encoded in Python. SQLite gets the rows as one JSON array (``json_each``); a
    row without properties takes the raw JSON text ``raw_properties()`` gives for it.
    """
    placeholders = ", ".join(["%s"] * len(constants))
    if is_postgresql():
        events_sql = "jsonb_build_array(%s::jsonb)"
        if events_json is None:
            events_json = msgspec.json.encode(
                [{"event": r[1], "distinct_id": r[2], "properties": r[4]} for r in rows]
            ).decode()
            events_sql = "%s::jsonb"
        elif batch:
            events_sql = "%s::jsonb -> 'events'"
        sql = (
            # Identifiers are quoted by the caller; every value is a parameter.
            f"INSERT INTO {table} ({columns}) "  # noqa: S608
            "SELECT r.m ->> 0, r.b ->> 'event', r.b ->> 'distinct_id', "
            f"(r.m ->> 1)::timestamptz, r.b -> 'properties', {placeholders}, "
            "CASE WHEN json_typeof(r.m -> 2) = 'array' THEN (r.m -> 2)::jsonb END "
            "FROM ROWS FROM (json_array_elements(%s::json), "
            f"jsonb_array_elements({events_sql})) WITH ORDINALITY AS r(m, b, n) "
            f"WHERE r.m -> 3 IS NULL OR NOT EXISTS (SELECT 1 FROM {table} e "
            f"WHERE e.{insert_id} = r.m ->> 0) "
            f"ORDER BY r.n ON CONFLICT ({conflict}) DO NOTHING"
        )
        # A fourth element marks a row deduplicated by insert_id alone.
        meta = msgspec.json.encode(
            [
                (row[0], row[3], row[5], 1) if flag else (row[0], row[3], row[5])
                for row, flag in zip(rows, by_id, strict=True)
            ]
        ).decode()
        params = [*constants, meta, events_json]
    else:
        # A WHERE clause also keeps SQLite from reading the upsert's ON CONFLICT as a join
        # constraint after INSERT ... SELECT; a seventh element marks a by-id row.
        sql = (
            f"INSERT INTO {table} ({columns}) "  # noqa: S608
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
            "json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
            f"json_extract(value, '$[4]'), {placeholders}, json_extract(value, '$[5]') "
            "FROM json_each(%s) WHERE json_extract(value, '$[6]') IS NULL OR NOT EXISTS "
            f"(SELECT 1 FROM {table} e WHERE e.{insert_id} = json_extract(value, '$[0]')) "
            f"ORDER BY key ON CONFLICT ({conflict}) DO NOTHING"
        )
        if any(row[4] is None for row in rows):
            rows = [
                (*row[:4], raw, row[5]) for row, raw in zip(rows, raw_properties(), strict=True)
            ]
        adapt = connection.ops.adapt_datetimefield_value
        document = msgspec.json.encode(
            [
                (*r[:3], adapt(r[3]), *r[4:6], *((1,) if flag else ()))
                for r, flag in zip(rows, by_id, strict=True)
            ]
        ).decode()
        params = [*(adapt(c) if isinstance(c, datetime) else c for c in constants), document]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # The row count of INSERT ... ON CONFLICT DO NOTHING counts only inserted rows.
        return cursor.rowcount


def events_copy_new(
    *,
    table: str,
    columns: str,
    insert_id: str,
    timestamp: str,
    by_id: Sequence[bool],
    constants: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    properties: Callable[[], Sequence[str]],
) -> int | None:
    """The events COPY (PostgreSQL): store the ``rows`` whose key is not taken, as
    ``events_insert_rows`` would, and return how many; None on SQLite, or when a concurrent
    writer stored one of the keys between the look-up and the COPY (a unique violation;
    also a deadlock between two such writers): then nothing of this call is kept and the
    caller stores the rows with ``events_insert_rows``.

    Same arguments as ``events_insert_rows`` (``timestamp`` is the quoted column), except
    that each row's properties come as JSON text from ``properties()`` (the request's own
    text, so stored as sent). One indexed query finds the rows already stored — by
    ``(insert_id, timestamp)``, the unique key, pruned to the row's partition; by
    ``insert_id`` alone for a ``by_id`` row —, a later row repeating an earlier row's
    key is dropped (the first occurrence wins), and the rest is one ``COPY … FROM STDIN``
    in request order: multi-row inserts, no speculative insertion per row. In autocommit
    the COPY is its own transaction; inside a caller's, it runs in a savepoint. The look-up
    is a prepared statement (``prepared_cursor``): no planning over every partition.
    """
    if not is_postgresql():
        return None
    # One JSON parameter, ``[[insert_id, timestamp, 1 when by_id], ...]``: msgspec encodes
    # it in microseconds, where adapting two Python lists of 100 values costs half a ms.
    keys = msgspec.json.encode(
        [
            (row[0], row[3], 1) if flag else (row[0], row[3])
            for row, flag in zip(rows, by_id, strict=True)
        ]
    ).decode()
    # Identifiers are quoted by the caller; the keys are a parameter.
    sql = (
        "SELECT k.n FROM json_array_elements(%s::json) WITH ORDINALITY AS k(m, n) "  # noqa: S608
        f"WHERE EXISTS (SELECT FROM {table} e WHERE e.{insert_id} = k.m ->> 0 "
        f"AND e.{timestamp} = (k.m ->> 1)::timestamptz)"
    )
    if any(by_id):
        sql += (
            " OR (k.m -> 2 IS NOT NULL AND EXISTS "
            f"(SELECT FROM {table} e WHERE e.{insert_id} = k.m ->> 0))"
        )
    with prepared_cursor() as cursor:
        cursor.execute(sql, [keys])
        stored = {n - 1 for (n,) in cursor.fetchall()}
    taken: set[tuple[str, datetime]] = set()
    new: list[int] = []
    for position, row in enumerate(rows):
        key = (row[0], row[3])
        if position not in stored and key not in taken:
            taken.add(key)
            new.append(position)
    if not new:
        return 0
    texts = properties()
    encode = msgspec.json.encode
    # COPY's text format, written here: one ``write`` of the whole request, the constant
    # columns formatted once (psycopg's ``write_row`` adapts every value of every row).
    tail = "\t".join(_copy_value(value) for value in constants)
    lines = []
    for position in new:
        row = rows[position]
        drift = row[5]
        lines.append(
            f"{_copy_text(row[0])}\t{_copy_text(row[1])}\t{_copy_text(row[2])}\t"
            f"{row[3].isoformat()}\t{_copy_text(texts[position])}\t{tail}\t"
            f"{_NULL if drift is None else _copy_text(encode(drift).decode())}\n"
        )
    copy_sql = f"COPY {table} ({columns}) FROM STDIN"
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with (
            guard,
            connection.wrap_database_errors,
            connection.cursor() as cursor,
            cursor.copy(copy_sql) as copy,
        ):
            copy.write("".join(lines))
    except IntegrityError:
        return None
    except OperationalError as exc:
        if isinstance(exc.__cause__, pg_errors.DeadlockDetected):
            return None
        raise
    return len(new)


_NULL = "\\N"


def _copy_text(text: str) -> str:
    """``text`` as a field of COPY's text format: backslash, tab, newline, CR escaped."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _copy_value(value: Any) -> str:
    """A constant column's value as a field of COPY's text format."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return _copy_text(str(value))


def advisory_xact_locks(keys: Sequence[str]) -> None:
    """Hold a lock on each of ``keys``, in the order given, until the transaction ends:
    PostgreSQL advisory locks on a 64-bit hash of each key, in one statement. SQLite needs
    none: ``BEGIN IMMEDIATE`` (the project's mode) holds the database's one write lock."""
    if not keys or not is_postgresql():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
            "FROM unnest(%s::text[]) AS k",
            [list(keys)],
        )


def json_array_items_join(column: str, alias: str) -> str:
    """A FROM-clause fragment joining each row to the text items of its JSON array
    ``column``, readable as ``<alias>.value``; rows whose column is NULL join none."""
    if is_postgresql():
        return f"CROSS JOIN LATERAL jsonb_array_elements_text({column}) AS {alias}(value)"
    return f", json_each({column}) AS {alias}"
