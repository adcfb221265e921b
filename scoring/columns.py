"""Column names from model metadata, for the hand-written SQL (typed: never ``None``)."""

from django.db import models
from django.db.models.fields.reverse_related import ForeignObjectRel


def field_column(field: models.Field | ForeignObjectRel) -> str:
    """The database column of a concrete ``field`` (``TypeError`` for anything without one)."""
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"{field!r} has no database column")
    return field.column


def column(model: type[models.Model], name: str) -> str:
    """The database column of ``model``'s field ``name`` (a field name or a foreign key's
    attname)."""
    return field_column(model._meta.get_field(name))
