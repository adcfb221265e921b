"""Which database the default connection is, and the columns behind a model's fields."""

from typing import Any

from django.db import connection, models
from django.db.models.fields.reverse_related import ForeignObjectRel


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


def _column_type(field: Any) -> str:
    # Without its length: the statement checks lengths against the real column.
    return field.db_type(connection).split("(")[0]
