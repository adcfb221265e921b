"""PostgreSQL's array writers: a batch as one array literal per column, read by ``unnest``.

One parameter per column instead of one per value, so neither Django's per-value
preparation nor the driver's per-parameter quoting grows with the batch.
"""

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from django.db import connection, models

from swampclub.dialect.vendor import _field_column


def _json_default(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()  # full precision (DjangoJSONEncoder drops microseconds)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _array_columns(model: type[models.Model], columns: Sequence[str]) -> list[tuple[str, str]]:
    """(quoted column, SQL array type) for each of ``columns`` (field names or attnames)."""
    opts = model._meta
    quote = connection.ops.quote_name
    result = []
    for name in columns:
        field = opts.get_field(name)
        target = field.target_field if isinstance(field, models.ForeignKey) else field
        result.append((quote(_field_column(field)), f"{target.db_type(connection)}[]"))
    return result


def _array_literal(values: Sequence[Any]) -> str:
    """``values`` as one PostgreSQL array literal (``{1,2,3}``, ``{"a","b"}``).

    Built here rather than by the driver: psycopg adapts a Python list element by element
    in Python, which cost more than the whole statement for a batch of thousands. Integers
    are written as they are; everything else is double-quoted with ``\\`` and ``"``
    escaped; ``None`` is ``NULL``.
    """
    first = next((v for v in values if v is not None), None)
    if isinstance(first, int) and not isinstance(first, bool) and None not in values:
        return "{" + ",".join(map(str, values)) + "}"
    # Memoized per value: a batch's rows share one timestamp, a few causes and tiers.
    quoted: dict[Any, str] = {None: "NULL"}

    def quote(value: Any) -> str:
        text = value.isoformat() if isinstance(value, (datetime, date)) else str(value)
        quoted[value] = item = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return item

    return "{" + ",".join([quoted.get(v) or quote(v) for v in values]) + "}"


def _column_arrays(rows: Sequence[Sequence[Any]], width: int) -> list[str]:
    # One array literal per column, sent as one text parameter each and cast server-side
    # to the column's array type; unnest() turns them back into rows.
    columns = [list(column) for column in zip(*rows, strict=True)] or [[]] * width
    return [_array_literal(column) for column in columns]


def pg_insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str = "",
) -> int:
    """Insert ``rows`` into ``model`` in one statement (PostgreSQL only); returns rowcount.

    Like ``pg_insert_arrays``, but a JSON column takes Python values (encoded here).
    ``on_conflict`` is appended verbatim (``ON CONFLICT (...) DO ...``); the target table
    is aliased ``t0`` so the conflict clause can refer to the existing row.
    """
    if not rows:
        return 0
    typed = _array_columns(model, columns)
    json_at = [i for i, (_, array_type) in enumerate(typed) if array_type.startswith("json")]
    if json_at:
        rows = [_json_encoded(row, json_at) for row in rows]
    names = ", ".join(column for column, _ in typed)
    arrays = ", ".join(f"%s::{array_type}" for _, array_type in typed)
    table = connection.ops.quote_name(model._meta.db_table)
    query = f"INSERT INTO {table} AS t0 ({names}) SELECT * FROM unnest({arrays}) {on_conflict}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(query, _column_arrays(rows, len(typed)))
        return cursor.rowcount


def _json_encoded(row: Sequence[Any], json_at: Sequence[int]) -> list[Any]:
    encoded = list(row)
    for index in json_at:
        if encoded[index] is not None:
            encoded[index] = json.dumps(encoded[index], default=_json_default)
    return encoded


def pg_insert_arrays(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str = "",
    returning: str = "",
) -> list[Any]:
    """Insert ``rows`` into ``model`` in one ``INSERT ... SELECT * FROM unnest(...)``
    (PostgreSQL only): one array parameter per column, whatever the number of rows.

    ``on_conflict`` is appended verbatim; with ``returning`` (a field's column name) the
    values of that column for the rows actually inserted are returned.
    """
    if not rows:
        return []
    typed = _array_columns(model, columns)
    names = ", ".join(column for column, _ in typed)
    arrays = ", ".join(f"%s::{array_type}" for _, array_type in typed)
    table = connection.ops.quote_name(model._meta.db_table)
    query = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {on_conflict}"  # noqa: S608
    if returning:
        query += f" RETURNING {connection.ops.quote_name(returning)}"
    with connection.cursor() as cursor:
        cursor.execute(query, _column_arrays(rows, len(typed)))
        return [row[0] for row in cursor.fetchall()] if returning else []


def pg_update_arrays(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]], *, key: str
) -> int:
    """Overwrite the ``columns`` of the rows matching each row's ``key`` (one of
    ``columns``) in one ``UPDATE ... FROM unnest(...)`` (PostgreSQL only); returns rowcount.

    Unlike ``INSERT ... ON CONFLICT DO UPDATE`` nothing is inserted: a row of ``rows``
    whose key matches no row is ignored.
    """
    if not rows:
        return 0
    typed = _array_columns(model, columns)
    names = [column for column, _ in typed]
    key_column = names[list(columns).index(key)]
    arrays = ", ".join(f"%s::{array_type}" for _, array_type in typed)
    assignments = ", ".join(f"{c} = v.{c}" for c in names if c != key_column)
    table = connection.ops.quote_name(model._meta.db_table)
    query = (
        f"UPDATE {table} AS t SET {assignments} "  # noqa: S608 - identifiers from metadata
        f"FROM unnest({arrays}) AS v({', '.join(names)}) WHERE t.{key_column} = v.{key_column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, _column_arrays(rows, len(typed)))
        return cursor.rowcount
