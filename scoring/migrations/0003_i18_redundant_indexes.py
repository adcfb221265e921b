"""Only the indexes the queries use (docs/performance.md, "Indexes").

- ``insert_id`` becomes unique through a ``UniqueConstraint`` instead of ``unique=True``, so
  PostgreSQL loses Django's ``varchar_pattern_ops`` copy of the index (``..._like``), which
  no query uses. The constraint keeps the name PostgreSQL gave the unique column
  (``scoring_telemetryevent_insert_id_key``): on PostgreSQL the unique index stays as it is
  and only the copy is dropped — no rebuild of a large index, no write lock while one is
  built. Other databases get the ordinary alter-field-then-add-constraint.
- The single-column foreign-key indexes on ``member`` that a composite index starting with
  ``member`` already covers are dropped, and so is ``scoring_history_time_idx`` (no query
  reads history by time alone).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

CONSTRAINT = "scoring_telemetryevent_insert_id_key"


def _insert_id_fields(apps):
    model = apps.get_model("scoring", "TelemetryEvent")
    old = model._meta.get_field("insert_id")
    new = models.CharField(max_length=100)
    new.set_attributes_from_name("insert_id")
    new.model = model
    return model, old, new


def _like_index(schema_editor, model, column: str) -> str:
    # The name Django's PostgreSQL backend gives the pattern-ops copy of a varchar index.
    return schema_editor._create_index_name(model._meta.db_table, [column], suffix="_like")


def insert_id_unique_forwards(apps, schema_editor) -> None:
    """Turn ``unique=True`` into the named constraint, dropping only the LIKE copy on PG."""
    model, old, new = _insert_id_fields(apps)
    if schema_editor.connection.vendor == "postgresql":
        name = schema_editor.quote_name(_like_index(schema_editor, model, old.column))
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        return
    schema_editor.alter_field(model, old, new)
    schema_editor.add_constraint(
        model, models.UniqueConstraint(fields=["insert_id"], name=CONSTRAINT)
    )


def insert_id_unique_backwards(apps, schema_editor) -> None:
    """Back to ``unique=True`` (with its LIKE copy on PostgreSQL)."""
    model, old, new = _insert_id_fields(apps)
    if schema_editor.connection.vendor == "postgresql":
        name = schema_editor.quote_name(_like_index(schema_editor, model, old.column))
        table = schema_editor.quote_name(model._meta.db_table)
        column = schema_editor.quote_name(old.column)
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} varchar_pattern_ops)"
        )
        return
    schema_editor.remove_constraint(
        model, models.UniqueConstraint(fields=["insert_id"], name=CONSTRAINT)
    )
    schema_editor.alter_field(model, new, old)


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0002_leaderboard_staff_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="scorehistory",
            name="scoring_history_time_idx",
        ),
        migrations.AlterField(
            model_name="scorehistory",
            name="member",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="score_history",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="telemetryevent",
            name="member",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="telemetry_events",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="tierbadgeclaim",
            name="member",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="tier_claims",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="tierchange",
            name="member",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="tier_changes",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="telemetryevent",
                    name="insert_id",
                    field=models.CharField(max_length=100),
                ),
                migrations.AddConstraint(
                    model_name="telemetryevent",
                    constraint=models.UniqueConstraint(fields=("insert_id",), name=CONSTRAINT),
                ),
            ],
            database_operations=[
                migrations.RunPython(
                    insert_id_unique_forwards, insert_id_unique_backwards, elidable=False
                ),
            ],
        ),
    ]
