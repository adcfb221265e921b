"""Per-table autovacuum settings for the tables the pipeline rewrites (PostgreSQL only).

The consumer's claim marks every event row processed and the score batch marks every
snapshot processed: each is an UPDATE that cannot be HOT (``status`` / ``processed_at`` are
in the partial indexes' predicates), so every row leaves one dead tuple behind, and its
entry in the pending index points at it until a vacuum removes it. With PostgreSQL's default
(vacuum once 20 % of the table is dead) a 10M-row events table would carry 2M dead rows
before a vacuum, and each claim's index scan walks past their entries. These tables are
vacuumed after a small fixed share instead, and analyzed as often, so the planner's idea of
how many rows are pending stays current. ``autovacuum_vacuum_insert_*`` (PostgreSQL 13+)
also vacuums insert-only stretches, which keeps the visibility map current for index-only
scans. Why these numbers: docs/performance.md, "Vacuum".

SQLite has no autovacuum of this kind; the migration does nothing there.
"""

from django.db import migrations

SETTINGS = {
    "TelemetryEvent": {
        "autovacuum_vacuum_scale_factor": "0.01",
        "autovacuum_vacuum_threshold": "10000",
        "autovacuum_vacuum_insert_scale_factor": "0.05",
        "autovacuum_vacuum_insert_threshold": "10000",
        "autovacuum_analyze_scale_factor": "0.01",
        "autovacuum_analyze_threshold": "10000",
    },
    "MetricsSnapshot": {
        "autovacuum_vacuum_scale_factor": "0.02",
        "autovacuum_vacuum_threshold": "5000",
        "autovacuum_analyze_scale_factor": "0.02",
        "autovacuum_analyze_threshold": "5000",
    },
    # Rewritten by every score batch (the board index's total_score moves: not HOT) and by
    # every consumer batch (metrics of each touched member).
    "UserScore": {
        "autovacuum_vacuum_scale_factor": "0.05",
        "autovacuum_vacuum_threshold": "1000",
    },
    "MemberMetrics": {
        "autovacuum_vacuum_scale_factor": "0.05",
        "autovacuum_vacuum_threshold": "1000",
    },
}


def apply(apps, schema_editor) -> None:
    """Set the storage parameters on PostgreSQL."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, params in SETTINGS.items():
        table = apps.get_model("scoring", model)._meta.db_table
        values = ", ".join(f"{key} = {value}" for key, value in params.items())
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} SET ({values})")


def reset(apps, schema_editor) -> None:
    """Back to the server's defaults."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for model, params in SETTINGS.items():
        table = apps.get_model("scoring", model)._meta.db_table
        schema_editor.execute(
            f"ALTER TABLE {schema_editor.quote_name(table)} RESET ({', '.join(params)})"
        )


class Migration(migrations.Migration):
    dependencies = [("scoring", "0003_i18_redundant_indexes")]

    operations = [migrations.RunPython(apply, reset, elidable=False)]
