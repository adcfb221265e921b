"""Set-based SQL helpers for the pipeline's hot paths.

On PostgreSQL a batch of thousands of rows is sent as one JSON document expanded
server-side (``INSERT ... SELECT ... FROM jsonb_to_recordset(%s)``), and id lists as one
array literal (``WHERE id = ANY(%s)``): one parameter instead of tens of thousands, so
neither Django's per-value preparation nor the driver's per-parameter quoting grows with
the batch. Other
databases (SQLite, the zero-setup default) take the ORM's portable path in the callers.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, models


def is_postgresql() -> bool:
    """True when the default database is PostgreSQL (the fast paths are PostgreSQL SQL)."""
    return connection.vendor == "postgresql"


def ids_in(column: str, ids: Iterable[int]) -> tuple[str, list[Any]]:
    """``column`` restricted to ``ids``: ``= ANY(%s)`` on PostgreSQL, ``IN (...)`` elsewhere.

    On PostgreSQL the ids go as one array literal (``'{1,2,3}'``): the driver's client-side
    quoting of a Python list costs more than the query for a batch of thousands.
    """
    ids = [int(i) for i in ids]
    if is_postgresql():
        return f"{column} = ANY(%s::bigint[])", ["{" + ",".join(map(str, ids)) + "}"]
    if not ids:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", ids


def _json_default(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()  # full precision (DjangoJSONEncoder drops microseconds)
    raise TypeError(f"cannot encode {type(value).__name__}")


def recordset_select(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> tuple[str, str, list[Any]]:
    """``(column list, SELECT ..., params)`` producing ``rows`` as typed rows of ``model``'s
    table on PostgreSQL. ``columns`` are field names or foreign-key attnames.

    The rows travel as one JSON document expanded by ``jsonb_to_recordset``: a single text
    parameter, encoded by the C JSON encoder, typed by the server with each column's own
    type.
    """
    opts = model._meta
    quote = connection.ops.quote_name
    keys, definitions = [], []
    for name in columns:
        field = opts.get_field(name)  # a field name or a foreign key's attname
        target = field.target_field if isinstance(field, models.ForeignKey) else field
        keys.append(field.column)
        definitions.append(f"{quote(field.column)} {target.db_type(connection)}")
    # jsonb_to_recordset matches object keys to the column definitions by name.
    document = json.dumps(
        [dict(zip(keys, row, strict=True)) for row in rows], default=_json_default
    )
    names = ", ".join(quote(k) for k in keys)
    # Only identifiers from model metadata are formatted in; the rows are one parameter.
    select = f"SELECT {names} FROM jsonb_to_recordset(%s::jsonb) AS r({', '.join(definitions)})"  # noqa: S608
    return names, select, [document]


def pg_insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str = "",
) -> int:
    """Insert ``rows`` into ``model`` in one statement (PostgreSQL only); returns rowcount.

    ``on_conflict`` is appended verbatim (``ON CONFLICT (...) DO ...``); the target table
    is aliased ``t0`` so the conflict clause can refer to the existing row.
    """
    if not rows:
        return 0
    names, select, params = recordset_select(model, columns, rows)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} AS t0 ({names}) {select} {on_conflict}", params)
        return cursor.rowcount


def insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) in one statement; with
    ``ignore_conflicts`` a row hitting a unique constraint is skipped."""
    if not rows:
        return
    if is_postgresql():
        pg_insert(
            model, columns, rows, on_conflict="ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        )
        return
    model._default_manager.bulk_create(
        [model(**dict(zip(columns, row, strict=True))) for row in rows],
        ignore_conflicts=ignore_conflicts,
    )


def upsert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    unique: str,
    update: Sequence[str],
) -> None:
    """Insert ``rows``, or overwrite ``update`` columns of the row with the same ``unique``
    field (``INSERT ... ON CONFLICT DO UPDATE``), in one statement."""
    if not rows:
        return
    if is_postgresql():
        opts = model._meta
        quote = connection.ops.quote_name
        assignments = ", ".join(
            f"{quote(opts.get_field(f).column)} = EXCLUDED.{quote(opts.get_field(f).column)}"
            for f in update
        )
        target = quote(opts.get_field(unique).column)
        pg_insert(
            model, columns, rows, on_conflict=f"ON CONFLICT ({target}) DO UPDATE SET {assignments}"
        )
        return
    model._default_manager.bulk_create(
        [model(**dict(zip(columns, row, strict=True))) for row in rows],
        update_conflicts=True,
        unique_fields=[unique],
        update_fields=list(update),
    )


class InIds(models.Lookup):
    """``field__in_ids=[...]``: ``IN`` for id lists of pipeline-batch size.

    Like ``__in``, but on PostgreSQL the ids are one array parameter (``= ANY(%s)``), so a
    5,000-id filter is not 5,000 placeholders for the driver to split and quote.
    """

    lookup_name = "in_ids"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        ids = [int(i) for i in self.rhs]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, "{" + ",".join(map(str, ids)) + "}"]
        if not ids:
            raise EmptyResultSet
        return f"{lhs} IN ({', '.join(['%s'] * len(ids))})", [*lhs_params, *ids]


# On plain fields and on foreign keys (related fields only accept lookups registered on them).
models.Field.register_lookup(InIds)
models.ForeignObject.register_lookup(InIds)
