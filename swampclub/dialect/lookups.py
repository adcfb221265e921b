"""Id filters and JSON reads: ``ids_in``, the ``__in_ids`` lookup and ``json_number_sql``."""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler

from swampclub.dialect.vendor import is_postgresql


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
