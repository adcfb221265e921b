"""Row writers for both databases: insert, upsert, insert-returning-new, add-from-deltas,
and the pipeline's insert / update / merge steps (``unnest`` on PostgreSQL, the ORM or
``VALUES`` lists elsewhere)."""

import json
from collections.abc import Callable, Iterator, Sequence
from itertools import batched
from typing import Any

from django.db import connection, models
from django.utils import timezone

from swampclub.dialect.arrays import _column_arrays, pg_insert, pg_insert_arrays, pg_update_arrays
from swampclub.dialect.vendor import _column_of, _column_type, _field_column, is_postgresql


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
