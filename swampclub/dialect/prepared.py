"""Prepared statements for the hot paths' queries (PostgreSQL).

Django runs every query with client-side binding, so the server parses and plans it each
time. For most queries that costs little, but a query over the partitioned events table
considers every partition and its indexes (about 1.6 ms to plan the ingest look-up of 100
keys, twice what running it costs), and the API-key look-up with its owner's authority
plans in 0.7 ms or more for 0.2 ms of work. Run through ``prepared_cursor``, such a query
is a prepared statement of the connection: the server plans it a few times, then keeps a
generic plan (partitions pruned at run time), so later requests on the connection (kept
``CONN_MAX_AGE``) skip planning. The statements stay Django's: logged, counted by tests,
errors wrapped. Behind a pooler in transaction mode (PgBouncer) this needs its
protocol-level prepared statement support (1.21+, ``max_prepared_statements``).
"""

from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.utils import CursorWrapper
from django.db.models.query import RawQuerySet
from django.db.models.sql.query import RawQuery

from swampclub.dialect.vendor import is_postgresql


class _PreparingCursor(psycopg.Cursor):
    """A server-binding psycopg cursor whose every statement is prepared (and reused)."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: Any = None
    ) -> "_PreparingCursor":
        return super().execute(
            query, params, prepare=True if prepare is None else prepare, binary=binary
        )


def prepared_cursor() -> CursorWrapper:
    """A cursor of the default connection whose statements are prepared statements of the
    connection (PostgreSQL only): ``%s`` placeholders, values bound by the server."""
    connection.ensure_connection()
    connection.validate_thread_sharing()
    # Django's wrappers take any DB-API cursor (its stubs say a wrapper).
    cursor: Any = _PreparingCursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


class _PreparedRawQuery(RawQuery):
    def clone(self, using: str) -> "_PreparedRawQuery":
        return _PreparedRawQuery(self.sql, using, params=self.params)

    def _execute_query(self) -> None:
        adapt = connections[self.using].ops.adapt_unknown_value
        self.cursor = prepared_cursor()
        self.cursor.execute(self.sql, tuple(adapt(value) for value in self.params))


def raw_prepared(model: type[models.Model], sql: str, params: tuple[Any, ...]) -> RawQuerySet:
    """``model.objects.raw(sql, params)`` on the default database, run as a prepared
    statement on PostgreSQL (``prepared_cursor``)."""
    if not is_postgresql():
        return model._default_manager.raw(sql, params)
    # RawQuerySet runs any RawQuery (its stubs say a Query).
    query: Any = _PreparedRawQuery(sql, DEFAULT_DB_ALIAS, params=params)
    return RawQuerySet(sql, model=model, query=query, params=params)
