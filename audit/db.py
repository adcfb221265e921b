"""The SQLite half of the append-only guarantee (PostgreSQL's is a pgtrigger trigger).

Kept here, not only in the migration, so the test suite can drop and re-create the DELETE
trigger around Django's test-database flush (``tests/conftest.py``): on SQLite the flush is
a plain ``DELETE FROM`` that the trigger would refuse. PostgreSQL flushes with TRUNCATE,
which row triggers do not see.
"""

from django.apps.registry import Apps
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TABLE = "audit_auditentry"
MESSAGE = "audit entries are append-only"
DELETE_TRIGGER = "audit_auditentry_no_delete"
UPDATE_TRIGGER = "audit_auditentry_no_update"


def _create(name: str, operation: str) -> str:
    return (
        f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {operation} ON {TABLE} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
    )


SQLITE_CREATE = [_create(UPDATE_TRIGGER, "UPDATE"), _create(DELETE_TRIGGER, "DELETE")]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {UPDATE_TRIGGER}",
    f"DROP TRIGGER IF EXISTS {DELETE_TRIGGER}",
]
SQLITE_DELETE_TRIGGER_DROP = f"DROP TRIGGER IF EXISTS {DELETE_TRIGGER}"
SQLITE_DELETE_TRIGGER_CREATE = _create(DELETE_TRIGGER, "DELETE")


def sqlite_triggers_create(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Migration step: install the triggers on SQLite (PostgreSQL has pgtrigger's)."""
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_CREATE:
            schema_editor.execute(statement)


def sqlite_triggers_drop(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Migration step (reverse): remove the SQLite triggers."""
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)
