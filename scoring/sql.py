"""Set-based SQL helpers for the pipeline's hot paths.

On PostgreSQL a batch of thousands of rows is sent as one JSON document expanded
server-side (``INSERT ... SELECT ... FROM jsonb_to_recordset(%s)``), and id lists as one
array literal (``WHERE id = ANY(%s)``): one parameter instead of tens of thousands, so
neither Django's per-value preparation nor the driver's per-parameter quoting grows with
the batch. Other
databases (SQLite, the zero-setup default) take the ORM's portable path in the callers.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, models

from scoring.sql_arrays import pg_insert_arrays, pg_update_arrays


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


class IdArray:
    """Ids for ``__in_ids`` that the ORM hands to the lookup whole.

    A plain list or tuple is walked element by element (``Query.resolve_lookup_value``, and
    ``check_related_objects`` on a foreign key) before the lookup sees it: 70,000 calls for
    a score batch of 10,000 members.
    """

    __slots__ = ("ids",)

    def __init__(self, ids: Iterable[int]) -> None:
        # Deliberately not iterable: for a foreign key the ORM would also check every
        # element of an iterable against the related model (``check_related_objects``).
        self.ids = list(ids)


class InIds(models.Lookup):
    """``field__in_ids=[...]``: ``IN`` for id lists of pipeline-batch size.

    Like ``__in``, but on PostgreSQL the ids are one array parameter (``= ANY(%s)``), so a
    5,000-id filter is not 5,000 placeholders for the driver to split and quote.
    """

    lookup_name = "in_ids"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        ids = [int(i) for i in (self.rhs.ids if isinstance(self.rhs, IdArray) else self.rhs)]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, "{" + ",".join(map(str, ids)) + "}"]
        if not ids:
            raise EmptyResultSet
        return f"{lhs} IN ({', '.join(['%s'] * len(ids))})", [*lhs_params, *ids]


# On plain fields and on foreign keys (related fields only accept lookups registered on them).
models.Field.register_lookup(InIds)
models.ForeignObject.register_lookup(InIds)


# --- Dialect-specific statements of the pipeline ----------------------------------------------
#
# Each function below is one step of the consumer or the score batch whose SQL differs by
# database; the callers have no ``is_postgresql()`` branches of their own.


class JsonText(str):
    """A JSON column value already encoded: PostgreSQL's array writers send it as it is, the
    portable ORM path decodes it for the field."""

    __slots__ = ()


def _portable_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, JsonText) else value


def _instances(model: type[models.Model], columns: Sequence[str], rows) -> list[models.Model]:
    return [
        model(**{c: _portable_value(v) for c, v in zip(columns, row, strict=True)}) for row in rows
    ]


def rows_insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """Insert ``rows`` in one statement: ``INSERT ... SELECT * FROM unnest(...)`` on
    PostgreSQL, ``bulk_create`` elsewhere; with ``ignore_conflicts`` a row hitting a unique
    constraint is skipped."""
    if not rows:
        return
    if is_postgresql():
        pg_insert_arrays(
            model, columns, rows, on_conflict="ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        )
        return
    model._default_manager.bulk_create(
        _instances(model, columns, rows), ignore_conflicts=ignore_conflicts
    )


def rows_insert_new(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Callable[[], Sequence[Sequence[Any]]],
    *,
    key: str,
) -> list[Any] | None:
    """Insert the rows ``rows()`` builds, skipping those whose unique ``key`` exists, and
    return the keys actually inserted (PostgreSQL: ``ON CONFLICT DO NOTHING RETURNING``);
    None, without calling ``rows``, where the database takes the caller's portable path."""
    if not is_postgresql():
        return None
    return pg_insert_arrays(
        model, columns, rows(), on_conflict="ON CONFLICT DO NOTHING", returning=key
    )


def rows_update(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]], *, key: str
) -> None:
    """Overwrite the ``columns`` of the existing rows matching each row's ``key``: one
    ``UPDATE ... FROM unnest(...)`` on PostgreSQL, an ORM upsert elsewhere."""
    if not rows:
        return
    if is_postgresql():
        pg_update_arrays(model, columns, rows, key=key)
        return
    unique = model._meta.get_field(key).name
    model._default_manager.bulk_create(
        _instances(model, columns, rows),
        update_conflicts=True,
        unique_fields=[unique],
        update_fields=[c for c in columns if c != key],
    )


def queue_claim(
    model: type[models.Model],
    *,
    pending: models.Q,
    pending_sql: str,
    mark: dict[str, Any],
    fields: Sequence[str],
    batch_size: int,
    extra: Sequence[tuple[str, str | None]] = (),
    extra_params: Sequence[Any] = (),
) -> list[tuple]:
    """Claim up to ``batch_size`` pending rows of a queue table (oldest id first), set
    ``mark`` on them, and return their ``fields`` (``id`` first) followed by one value per
    ``extra`` pair ``(SQL expression, field)``: on PostgreSQL the expression (decoded when
    the field is a JSON field), elsewhere the field's value (None when no field is named),
    ordered by id.

    SKIP LOCKED: rows another worker has claimed are skipped, not waited on; the claimed
    rows stay locked until the caller's transaction ends, and a rollback leaves them
    pending. Keyed by ``id`` only, so it works the same on a partitioned table (the
    subquery finds the pending ids in every partition; the outer UPDATE locks and writes
    each row once in its own partition). On PostgreSQL claim and mark are one ``UPDATE ...
    WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``: each row is written once
    instead of locked and then rewritten. ``pending`` and ``pending_sql`` are the same
    condition, for the ORM and as SQL over the table's columns.
    """
    if not is_postgresql():
        named = [name for _, name in extra if name]
        rows = list(
            model._default_manager.select_for_update(skip_locked=True)
            .filter(pending)
            .order_by("id")
            .values_list(*fields, *named)[:batch_size]
        )
        if rows:
            model._default_manager.filter(id__in_ids=IdArray(row[0] for row in rows)).update(**mark)
        width = len(fields)
        result = []
        for row in rows:
            values = iter(row[width:])
            result.append((*row[:width], *(next(values) if n else None for _, n in extra)))
        return result
    opts = model._meta
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    assignments = ", ".join(f"{quote(opts.get_field(f).column)} = %s" for f in mark)
    returning = ", ".join(quote(opts.get_field(f).column) for f in fields)
    for expression, _ in extra:
        returning += f", {expression}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE id IN ("  # noqa: S608 - metadata names
            f"SELECT id FROM {table} WHERE {pending_sql} "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"RETURNING {returning}",
            [*mark.values(), batch_size, *extra_params],
        )
        rows = cursor.fetchall()
    rows.sort(key=lambda row: row[0])
    # Raw rows carry jsonb as text (Django decodes it in the field): decode what stands
    # for a JSON field here, so both paths return the same values.
    width = len(fields)
    decode = [
        width + i
        for i, (_, name) in enumerate(extra)
        if name and isinstance(opts.get_field(name), models.JSONField)
    ]
    if decode:
        rows = [list(row) for row in rows]
        for row in rows:
            for i in decode:
                if row[i] is not None:
                    row[i] = json.loads(row[i])
    return rows


def rows_merge(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str,
    portable: Callable[[], None],
) -> None:
    """Merge ``rows`` into ``model``'s table: on PostgreSQL one ``INSERT ... ON CONFLICT``
    with ``on_conflict`` (the stored row aliased ``t0``, the new one ``EXCLUDED``);
    elsewhere ``portable()``, the caller's own insert / lock / upsert."""
    if not rows:
        return
    if is_postgresql():
        pg_insert(model, columns, rows, on_conflict=on_conflict)
    else:
        portable()
