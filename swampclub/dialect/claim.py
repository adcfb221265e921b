"""The pipeline's queue claims, SKIP LOCKED, each one statement on PostgreSQL: ``queue_take``
deletes rows of a narrow queue table and reads the rows they name (the events queue);
``queue_claim`` marks pending rows of a table in place (the snapshot queue)."""

import json
from collections.abc import Sequence
from typing import Any

from django.db import connection, models

from swampclub.dialect.lookups import IdArray
from swampclub.dialect.vendor import _column_of, is_postgresql


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
        return _with_extras(rows, len(fields), extra)
    opts = model._meta
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    assignments = ", ".join(f"{quote(_column_of(model, f))} = %s" for f in mark)
    returning = _returning(model, fields, extra)
    claimed_columns, in_range = "id", ""
    if range_field is not None:
        bound = quote(_column_of(model, range_field))
        claimed_columns = f"id, {bound}"
        in_range = _in_range(bound, bound, "claimed")
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
    return _json_decoded(model, rows, len(fields), extra)


def _with_extras(rows: Any, width: int, extra: Sequence[tuple[str, str | None]]) -> list[tuple]:
    """Rows of ``fields`` followed by the named ``extra`` values, as tuples with None where
    an ``extra`` pair names no field (the database-neutral path)."""
    result = []
    for row in rows:
        values = iter(row[width:])
        result.append((*row[:width], *(next(values) if n else None for _, n in extra)))
    return result


def _returning(
    model: type[models.Model], fields: Sequence[str], extra: Sequence[tuple[str, str | None]]
) -> str:
    """The quoted columns of ``fields`` followed by each ``extra`` SQL expression."""
    quote = connection.ops.quote_name
    return ", ".join([*(quote(_column_of(model, f)) for f in fields), *(expr for expr, _ in extra)])


def _in_range(bound: str, source_bound: str, cte: str) -> str:
    """``AND bound BETWEEN`` the smallest and largest ``source_bound`` of the CTE ``cte``:
    lets PostgreSQL prune to the partitions holding the claimed rows."""
    return (
        f" AND {bound} BETWEEN (SELECT min({source_bound}) FROM {cte}) "  # noqa: S608 - quoted column names
        f"AND (SELECT max({source_bound}) FROM {cte})"
    )


def _json_decoded(
    model: type[models.Model],
    rows: list[Any],
    width: int,
    extra: Sequence[tuple[str, str | None]],
) -> list[Any]:
    """Raw rows carry jsonb as text (Django decodes it in the field): decode the ``extra``
    values that stand for a JSON field, so both database paths return the same values."""
    opts = model._meta
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


def queue_take(
    queue: type[models.Model],
    *,
    target: type[models.Model],
    fields: Sequence[str],
    batch_size: int,
    extra: Sequence[tuple[str, str | None]] = (),
    extra_params: Sequence[Any] = (),
    range_field: str | None = None,
) -> list[tuple]:
    """Take up to ``batch_size`` rows of the narrow ``queue`` table (lowest key first; its
    primary key is a one-to-one to ``target``) by deleting them, and return the ``fields``
    (``id`` first) and ``extra`` values of the ``target`` rows they named, as
    ``queue_claim`` does, ordered by id.

    SKIP LOCKED: queue rows another worker has taken are skipped, not waited on; the taken
    rows are deleted in the caller's transaction, so a rollback leaves them queued and a
    commit removes them for good. Nothing is written to the target rows. On PostgreSQL it is
    one statement: the locked ``SELECT ... FOR UPDATE SKIP LOCKED`` feeds a ``DELETE ...
    RETURNING`` in a CTE, and the target rows are read by their ids and, with ``range_field``
    (the partition key, a column of the queue too), the taken range of it, so PostgreSQL
    reads only the partitions holding them, each row by its primary key.
    """
    key = queue._meta.pk
    if key is None or key.column is None:
        raise TypeError(f"{queue.__name__} has no primary key column")
    if not is_postgresql():
        ids = list(
            queue._default_manager.select_for_update(skip_locked=True)
            .order_by(key.attname)
            .values_list(key.attname, flat=True)[:batch_size]
        )
        if not ids:
            return []
        queue._default_manager.filter(**{f"{key.attname}__in": ids}).delete()
        named = [name for _, name in extra if name]
        rows = target._default_manager.filter(id__in_ids=IdArray(ids)).order_by("id")
        return _with_extras(rows.values_list(*fields, *named), len(fields), extra)
    quote = connection.ops.quote_name
    queue_table, target_table = quote(queue._meta.db_table), quote(target._meta.db_table)
    key_column = quote(key.column)
    returning = _returning(target, fields, extra)
    taken_columns, in_range = key_column, ""
    if range_field is not None:
        bound, taken_bound = (quote(_column_of(m, range_field)) for m in (target, queue))
        taken_columns = f"{key_column}, {taken_bound}"
        in_range = _in_range(bound, taken_bound, "taken")
    with connection.cursor() as cursor:
        cursor.execute(
            # Identifiers from model metadata; every value is a parameter.
            f"WITH taken AS (DELETE FROM {queue_table} WHERE {key_column} = ANY (ARRAY("  # noqa: S608
            f"SELECT {key_column} FROM {queue_table} ORDER BY {key_column} LIMIT %s "
            f"FOR UPDATE SKIP LOCKED)) RETURNING {taken_columns}) "
            f"SELECT {returning} FROM {target_table} "
            f"WHERE id = ANY (ARRAY(SELECT {key_column} FROM taken)){in_range}",
            [batch_size, *extra_params],
        )
        rows = cursor.fetchall()
    rows.sort(key=lambda row: row[0])
    return _json_decoded(target, rows, len(fields), extra)


def queue_vacuum(queue: type[models.Model]) -> bool:
    """``VACUUM (SKIP_LOCKED, ANALYZE)`` the narrow ``queue`` table; True when it ran.

    Only on PostgreSQL and outside a transaction (VACUUM cannot run inside one); a vacuum
    another session holds is not waited on (SKIP_LOCKED). The queue is a few dozen bytes a
    row, so this costs milliseconds per 100,000 dead rows.
    """
    if not is_postgresql() or connection.in_atomic_block:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"VACUUM (SKIP_LOCKED, ANALYZE) {connection.ops.quote_name(queue._meta.db_table)}"
        )
    return True
