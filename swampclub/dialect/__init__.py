"""Set-based SQL helpers: every statement that differs between PostgreSQL and SQLite.

On PostgreSQL a batch of thousands of rows is sent as one array literal per column
(``unnest``), and id lists as one array literal (``WHERE id = ANY(%s)``): one parameter
instead of tens of thousands, so neither Django's per-value preparation nor the driver's
per-parameter quoting grows with the batch. Other databases (SQLite, the zero-setup default)
take the portable paths here.

Callers import every name from this package; the submodules group them by concern:
``vendor`` (the database and model columns), ``lookups`` (id filters, the ``__in_ids``
lookup, JSON reads), ``arrays`` (PostgreSQL's ``unnest`` writers), ``rows`` (inserts,
upserts, updates and merges for both databases), ``claim`` (the queue claim) and ``ingest``
(the events INSERT, advisory locks, JSON array items).
"""

from swampclub.dialect.arrays import (
    _array_columns,
    _array_literal,
    _column_arrays,
    _json_default,
    _json_encoded,
    pg_insert,
    pg_insert_arrays,
    pg_update_arrays,
)
from swampclub.dialect.claim import queue_claim, queue_take, queue_vacuum
from swampclub.dialect.ingest import (
    advisory_xact_locks,
    events_copy_new,
    events_insert_rows,
    json_array_items_join,
)
from swampclub.dialect.lookups import IdArray, InIds, ids_in, json_number_sql, lookups_register
from swampclub.dialect.prepared import prepared_cursor, raw_prepared
from swampclub.dialect.rows import (
    ROWS_PER_STATEMENT,
    JsonText,
    add_from_deltas,
    insert_returning_new,
    insert_rows,
    rows_insert,
    rows_insert_new,
    rows_merge,
    rows_source,
    rows_update,
    upsert_rows,
)
from swampclub.dialect.vendor import _column_of, _column_type, _field_column, is_postgresql

__all__ = [
    "ROWS_PER_STATEMENT",
    "IdArray",
    "InIds",
    "JsonText",
    "_array_columns",
    "_array_literal",
    "_column_arrays",
    "_column_of",
    "_column_type",
    "_field_column",
    "_json_default",
    "_json_encoded",
    "add_from_deltas",
    "advisory_xact_locks",
    "events_copy_new",
    "events_insert_rows",
    "ids_in",
    "insert_returning_new",
    "insert_rows",
    "is_postgresql",
    "json_array_items_join",
    "json_number_sql",
    "lookups_register",
    "pg_insert",
    "pg_insert_arrays",
    "pg_update_arrays",
    "prepared_cursor",
    "queue_claim",
    "queue_take",
    "queue_vacuum",
    "raw_prepared",
    "rows_insert",
    "rows_insert_new",
    "rows_merge",
    "rows_source",
    "rows_update",
    "upsert_rows",
]
