"""Set-based SQL helpers: every statement that differs between PostgreSQL and SQLite.

On PostgreSQL a batch of thousands of rows is sent as one array literal per column
(``unnest``), and id lists as one array literal (``WHERE id = ANY(%s)``): one parameter
instead of tens of thousands, so neither Django's per-value preparation nor the driver's
per-parameter quoting grows with the batch. Other
databases (SQLite, the zero-setup default) take the portable paths here.
"""

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from itertools import batched
from typing import Any

import msgspec
from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone


def is_postgresql() -> bool:
    """True when the default database is PostgreSQL (the fast paths are PostgreSQL SQL)."""
    return connection.vendor == "postgresql"


def _field_column(field: models.Field | ForeignObjectRel) -> str:
    """The database column of a concrete ``field`` (``TypeError`` for anything without one)."""
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"{field!r} has no database column")
    return field.column


def _column_of(model: type[models.Model], name: str) -> str:
    """The database column of ``model``'s field ``name`` (a field name or an attname)."""
    return _field_column(model._meta.get_field(name))


def ids_in(column: str, ids: Iterable[int], *, vendor: str | None = None) -> tuple[str, list[Any]]:
    """``column`` restricted to ``ids``: ``= ANY(%s)`` on PostgreSQL, ``IN (...)`` elsewhere.

    On PostgreSQL the ids go as one array literal (``'{1,2,3}'``): the driver's client-side
    quoting of a Python list costs more than the query for a batch of thousands. ``vendor``
    defaults to the default database's. The ``__in_ids`` lookup builds its SQL here too.
    """
    ids = [int(i) for i in ids]
    if (vendor or connection.vendor) == "postgresql":
        return f"{column} = ANY(%s::bigint[])", ["{" + ",".join(map(str, ids)) + "}"]
    if not ids:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", ids


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
        quote = connection.ops.quote_name
        assignments = ", ".join(
            f"{quote(_column_of(model, f))} = EXCLUDED.{quote(_column_of(model, f))}"
            for f in update
        )
        target = quote(_column_of(model, unique))
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


# Rows per INSERT/UPDATE statement on SQLite: well under its 32,766 bind parameters.
# (PostgreSQL takes every row at once as one array per column.)
ROWS_PER_STATEMENT = 500


def rows_source(
    rows: Sequence[Sequence[Any]], db_types: Sequence[str]
) -> Iterator[tuple[str, list[Any]]]:
    """``rows`` as SQL row sources with their parameters: one ``SELECT * FROM unnest(...)``
    on PostgreSQL, ``VALUES`` lists of ``ROWS_PER_STATEMENT`` rows on SQLite (its bind
    limit). ``db_types`` are column types without length (``varchar``)."""
    if is_postgresql():
        casts = ", ".join(f"%s::{db_type}[]" for db_type in db_types)
        # The types come from the model's fields; every value is a parameter.
        source = f"SELECT * FROM unnest({casts})"  # noqa: S608
        yield source, _column_arrays(rows, len(db_types))
        return
    row_sql = "(" + ", ".join(["%s"] * len(db_types)) + ")"
    for chunk in batched(rows, ROWS_PER_STATEMENT):
        yield "VALUES " + ", ".join([row_sql] * len(chunk)), [v for row in chunk for v in row]


def _column_type(field: Any) -> str:
    # Without its length: the statement checks lengths against the real column.
    return field.db_type(connection).split("(")[0]


def insert_returning_new(
    model: type[models.Model], objs: Sequence[models.Model], *, unique: Sequence[str]
) -> set[Any]:
    """Insert ``objs`` through the ``unique`` fields' constraint (``ON CONFLICT DO NOTHING
    RETURNING pk``, SQLite ≥ 3.35 too); the pks of the rows inserted. The constraint, not a
    prior read, decides who inserts (``bulk_create`` cannot say which rows it inserted)."""
    if not objs:
        return set()
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(_field_column(f)) for f in fields)
    target = ", ".join(qn(_column_of(model, name)) for name in unique)
    rows = [
        [f.get_db_prep_save(f.pre_save(obj, add=True), connection=connection) for f in fields]
        for obj in objs
    ]
    inserted: set[Any] = set()
    for source, params in rows_source(rows, [_column_type(f) for f in fields]):
        # ``WHERE true`` keeps SQLite from reading ON CONFLICT as a join constraint.
        sql = (
            # Identifiers come from the model and are quoted; every value is a parameter.
            f"INSERT INTO {qn(meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT * FROM ({source}) AS row_source WHERE true "
            f"ON CONFLICT ({target}) DO NOTHING RETURNING {qn(_field_column(meta.pk))}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            inserted.update(row[0] for row in cursor.fetchall())
    return inserted


def add_from_deltas(
    model: type[models.Model],
    *,
    key: str,
    column: str,
    deltas: Sequence[tuple[int, int]],
    touch: str | None = None,
) -> None:
    """``column += delta`` for each ``(key, delta)``, added by the database under the row
    lock; ``touch`` names a datetime field set to now."""
    if not deltas:
        return
    meta = model._meta
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    key_col = qn(_column_of(model, key))
    value_col = qn(_column_of(model, column))
    assignments = f"{value_col} = {table}.{value_col} + delta.amount"
    extra: list[Any] = []
    if touch is not None:
        assignments += f", {qn(_column_of(model, touch))} = %s"
        extra.append(connection.ops.adapt_datetimefield_value(timezone.now()))
    for source, params in rows_source(deltas, ["bigint", "bigint"]):
        # A CTE names the source's columns the same way on PostgreSQL and SQLite (≥ 3.33).
        sql = (
            # Identifiers come from the model and are quoted; every value is a parameter.
            f"WITH delta (key, amount) AS ({source}) "  # noqa: S608
            f"UPDATE {table} SET {assignments} FROM delta WHERE {table}.{key_col} = delta.key"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, *extra])


def json_number_sql(column: str, key: str) -> str:
    """SQL for the number at ``key`` of JSON ``column``, else 0 (trusted identifiers)."""
    if is_postgresql():
        return (
            f"CASE WHEN jsonb_typeof({column} -> '{key}') = 'number' "
            f"THEN CAST({column} ->> '{key}' AS numeric) ELSE 0 END"
        )
    return (
        f"CASE WHEN json_type({column}, '$.{key}') IN ('integer', 'real') "
        f"THEN json_extract({column}, '$.{key}') ELSE 0 END"
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

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, Any]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        ids = self.rhs.ids if isinstance(self.rhs, IdArray) else self.rhs
        if connection.vendor != "postgresql" and not ids:
            raise EmptyResultSet
        sql, params = ids_in(lhs, ids, vendor=connection.vendor)
        return sql, [*lhs_params, *params]


def lookups_register() -> None:
    """Register ``__in_ids`` on plain fields and on foreign keys (related fields only accept
    lookups registered on them). Called once from ``ScoringConfig.ready()``."""
    models.Field.register_lookup(InIds)
    models.ForeignObject.register_lookup(InIds)


# --- Ingest and the clients summary: the dialect's statement behind each name ------------------
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


def _instances(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[models.Model]:
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
    range_field: str | None = None,
) -> list[tuple]:
    """Claim up to ``batch_size`` pending rows of a queue table (oldest id first), set
    ``mark`` on them, and return their ``fields`` (``id`` first) followed by one value per
    ``extra`` pair ``(SQL expression, field)``: on PostgreSQL the expression (decoded when
    the field is a JSON field), elsewhere the field's value (None when no field is named),
    ordered by id.

    SKIP LOCKED: rows another worker has claimed are skipped, not waited on; the claimed
    rows stay locked until the caller's transaction ends, and a rollback leaves them
    pending. On PostgreSQL claim and mark are one statement, the locked ``SELECT ... FOR
    UPDATE SKIP LOCKED`` in a materialized CTE and an ``UPDATE ... RETURNING`` of its rows:
    each row is written once instead of locked and then rewritten. The UPDATE names the
    claimed ids as an array and, with ``range_field`` (a partitioned table's partition key),
    their range of that field, so PostgreSQL prunes to the partitions holding them and finds
    the rows by each one's primary key; joining on ``id IN (subquery)`` alone, it chose a
    hash join over a scan of every partition — the whole history — for each batch.
    ``pending`` and ``pending_sql`` are the same condition, for the ORM and as SQL over the
    table's columns.
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
    assignments = ", ".join(f"{quote(_column_of(model, f))} = %s" for f in mark)
    returning = ", ".join(quote(_column_of(model, f)) for f in fields)
    for expression, _ in extra:
        returning += f", {expression}"
    claimed_columns, in_range = "id", ""
    if range_field is not None:
        bound = quote(_column_of(model, range_field))
        claimed_columns = f"id, {bound}"
        in_range = (
            f" AND {bound} BETWEEN (SELECT min({bound}) FROM claimed) "  # noqa: S608 - quoted column names
            f"AND (SELECT max({bound}) FROM claimed)"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            # Identifiers from model metadata; every value is a parameter.
            f"WITH claimed AS MATERIALIZED (SELECT {claimed_columns} FROM {table} "  # noqa: S608
            f"WHERE {pending_sql} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"UPDATE {table} SET {assignments} "
            f"WHERE id = ANY (ARRAY(SELECT id FROM claimed)){in_range} "
            f"RETURNING {returning}",
            [batch_size, *mark.values(), *extra_params],
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
