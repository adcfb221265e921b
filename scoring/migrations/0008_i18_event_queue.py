"""The consumer's queue becomes a narrow table; the event row no longer carries a status.

- ``scoring_pendingevent`` (event_id primary key, the event's ``timestamp``) holds exactly
  the events not yet processed; the events that were pending are enqueued here, under a lock
  that keeps ingest out until the migration commits (no event is left unqueued).
- An ``AFTER INSERT`` trigger on the events table fills it: on PostgreSQL one statement-level
  trigger on the partitioned parent with a transition table (django-pgtrigger), so every
  writer — the ingest INSERT ... ON CONFLICT (only the rows really inserted), COPY, raw
  loaders — enqueues set-based; on SQLite a row-level trigger (created last: SQLite's
  schema editor rebuilds the table to drop a column, which drops its triggers).
- ``status`` and ``processed_at`` are dropped, with the pending partial index: a processed
  event is one out of the queue with an empty ``error``; a rejected one has its ``error``
  set (the rejected partial index now reads ``error <> ''``).
- The queue table gets its own autovacuum settings: every event passes through it once (an
  insert, then a delete), so it is vacuumed after a fixed number of dead rows, not a share
  of a table that is empty most of the time (docs/performance.md, "Consume: the pending
  queue").

Backwards restores the columns and the statuses (pending from the queue, rejected from
``error``, processed otherwise).
"""

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models

EVENTS = "scoring_telemetryevent"
QUEUE = "scoring_pendingevent"
QUEUE_AUTOVACUUM = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "10000",
    "autovacuum_vacuum_insert_scale_factor": "0",
    "autovacuum_vacuum_insert_threshold": "10000",
    "autovacuum_analyze_scale_factor": "0",
    "autovacuum_analyze_threshold": "10000",
}
SQLITE_TRIGGER = "scoring_event_enqueue"


def enqueue_pending(apps, schema_editor) -> None:
    """Enqueue the events that were pending; tune the queue's autovacuum (PostgreSQL)."""
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            # Ingest waits until commit: the trigger added next covers everything after.
            cursor.execute(f'LOCK TABLE "{EVENTS}" IN SHARE ROW EXCLUSIVE MODE')
            values = ", ".join(f"{key} = {value}" for key, value in QUEUE_AUTOVACUUM.items())
            cursor.execute(f'ALTER TABLE "{QUEUE}" SET ({values})')
        cursor.execute(
            f'INSERT INTO "{QUEUE}" (event_id, "timestamp") '  # noqa: S608 - constant names
            f'SELECT id, "timestamp" FROM "{EVENTS}" WHERE status = \'pending\''
        )


def statuses_restore(apps, schema_editor) -> None:
    """Backwards: each event's status column from the queue and ``error``."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{EVENTS}" SET status = CASE '  # noqa: S608 - constant names
            f"WHEN id IN (SELECT event_id FROM \"{QUEUE}\") THEN 'pending' "
            "WHEN error <> '' THEN 'rejected' ELSE 'processed' END"
        )


def sqlite_trigger_create(apps, schema_editor) -> None:
    """The row-level enqueue trigger on SQLite (PostgreSQL: the pgtrigger above)."""
    if schema_editor.connection.vendor != "sqlite":
        return
    schema_editor.execute(
        f'CREATE TRIGGER IF NOT EXISTS "{SQLITE_TRIGGER}" AFTER INSERT ON "{EVENTS}" '  # noqa: S608
        f'BEGIN INSERT INTO "{QUEUE}" (event_id, "timestamp") VALUES (NEW.id, NEW."timestamp"); '
        "END"
    )


def sqlite_trigger_drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f'DROP TRIGGER IF EXISTS "{SQLITE_TRIGGER}"')


class Migration(migrations.Migration):
    dependencies = [("scoring", "0007_i18_partitioned_events")]

    operations = [
        migrations.CreateModel(
            name="PendingEvent",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="queued",
                        serialize=False,
                        to="scoring.telemetryevent",
                    ),
                ),
                ("timestamp", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(enqueue_pending, statuses_restore, elidable=False),
        pgtrigger.migrations.AddTrigger(
            model_name="telemetryevent",
            trigger=pgtrigger.compiler.Trigger(
                name="event_enqueue",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "scoring_pendingevent" ("event_id", "timestamp") SELECT "id", "timestamp" FROM new_rows; RETURN NULL;',  # noqa: E501
                    hash="25562684c74d46ea20122b98e11b7a6736439804",
                    level="STATEMENT",
                    operation="INSERT",
                    pgid="pgtrigger_event_enqueue_34e28",
                    referencing="REFERENCING NEW TABLE AS new_rows ",
                    table="scoring_telemetryevent",
                    when="AFTER",
                ),
            ),
        ),
        migrations.RemoveIndex(model_name="telemetryevent", name="scoring_event_pending_idx"),
        migrations.RemoveIndex(model_name="telemetryevent", name="scoring_event_rejected_idx"),
        migrations.AddIndex(
            model_name="telemetryevent",
            index=models.Index(
                condition=models.Q(("error", ""), _negated=True),
                fields=["id"],
                name="scoring_event_rejected_idx",
            ),
        ),
        migrations.RemoveField(model_name="telemetryevent", name="processed_at"),
        migrations.RemoveField(model_name="telemetryevent", name="status"),
        migrations.AlterField(
            model_name="telemetryevent",
            name="error",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
        migrations.RunPython(sqlite_trigger_create, sqlite_trigger_drop, elidable=False),
    ]
