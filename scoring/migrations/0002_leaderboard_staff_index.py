"""A partial index of staff accounts, for the leaderboards' staff exclusion.

With ``LEADERBOARD_EXCLUDE_STAFF`` every board query drops staff with ``NOT EXISTS (SELECT
... FROM <user table> WHERE is_staff AND id = member_id)``. Without an index PostgreSQL
answers that by scanning the whole user table on every page (about 1 ms per 10,000 users);
this index holds only the few staff rows, so the anti-join reads a handful of entries. The
user model belongs to ``django.contrib.auth``, so the index is created here, by name, on
whatever table the configured user model uses. A flag denormalized onto UserScore would
serve too, but would have to follow every change of ``is_staff``; this cannot go stale.
"""

from django.conf import settings
from django.db import migrations

INDEX = "scoring_user_staff_idx"


def _table(apps, schema_editor) -> str:
    user = apps.get_model(settings.AUTH_USER_MODEL)
    return schema_editor.quote_name(user._meta.db_table)


def create(apps, schema_editor) -> None:
    """Create the partial index (both PostgreSQL and SQLite support ``WHERE`` on an index)."""
    user = apps.get_model(settings.AUTH_USER_MODEL)
    pk = schema_editor.quote_name(user._meta.pk.column)
    staff = schema_editor.quote_name(user._meta.get_field("is_staff").column)
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON {_table(apps, schema_editor)} ({pk}) WHERE {staff}"
    )


def drop(apps, schema_editor) -> None:
    """Drop the partial index."""
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
