"""The hot tables carry only the indexes their queries use (docs/performance.md, "Indexes")."""

import pytest
from django.db import IntegrityError, connection, transaction

from awards.models import Award
from scoring.models import (
    MetricsSnapshot,
    ScoreHistory,
    TelemetryEvent,
    TierBadgeClaim,
    TierChange,
)

pytestmark = pytest.mark.django_db

# Every index (primary key and unique constraints included) each hot table may have, by
# its columns; docs/performance.md names the query each one serves.
EXPECTED = {
    TelemetryEvent: {
        ("id",),  # primary key (on PostgreSQL (id, timestamp): the partition key is in it)
        ("insert_id", "timestamp"),  # unique: ON CONFLICT (insert_id, timestamp) DO NOTHING
        ("api_key_id",),  # ON DELETE SET NULL when a key is deleted
        ("id",),  # rejected partial index (error <> ''): staff health, lineage
        ("member_id", "timestamp"),
        ("received_at", "cli_version"),  # staff: events per CLI version, last 7 days
        ("received_at",),  # drift and late partial indexes (staff: last 7 days)
    },
    MetricsSnapshot: {("id",), ("member_id",)},
    ScoreHistory: {("id",), ("member_id", "recorded_at")},
    TierBadgeClaim: {("id",), ("member_id", "tier")},
    TierChange: {("id",), ("member_id", "changed_at"), ("changed_at",)},
    Award: {
        ("id",),
        ("recipient_id", "idempotency_key"),
        ("recipient_id", "granted_at"),
        ("granted_at", "id"),
        ("granted_by_id", "granted_at"),
        ("granted_by_id", "created_at"),  # a granter's budget: points written in 30 days
        ("category", "granted_at"),
    },
}


def _indexes(model) -> dict[str, tuple[str, ...]]:
    """Index name → its columns, as the database has them (SQLite's hidden autoindexes of
    inline UNIQUE columns included). The events table's primary key on PostgreSQL is
    (id, timestamp), the partition key included; it is counted as ("id",) here and pinned
    by name and columns in ``test_events_table_is_partitioned_by_month_of_timestamp``."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table)
    indexes = {
        name: tuple(info["columns"])
        for name, info in found.items()
        if (info["index"] or info["unique"] or info["primary_key"]) and info["columns"]
    }
    if model is TelemetryEvent and connection.vendor == "postgresql":
        assert indexes.pop("scoring_telemetryevent_pkey") == ("id", "timestamp")
        indexes["scoring_telemetryevent_pkey"] = ("id",)
    return indexes


@pytest.mark.parametrize("model", list(EXPECTED), ids=lambda m: m.__name__)
def test_hot_tables_have_no_redundant_index(model):
    indexes = _indexes(model)
    assert sorted(set(indexes.values())) == sorted(EXPECTED[model])
    # No pattern-ops copy (PostgreSQL names them ``..._like``).
    assert not [name for name in indexes if name.endswith("_like")]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: its index catalog")
def test_events_table_has_exactly_the_named_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s",
            [TelemetryEvent._meta.db_table],
        )
        names = {row[0] for row in cursor.fetchall()}
    assert names == {
        "scoring_telemetryevent_pkey",
        "scoring_event_dedup_key",
        "scoring_telemetryevent_api_key_id_14d301f0",
        "scoring_event_rejected_idx",
        "scoring_event_member_ts_idx",
        "scoring_event_version_idx",
        "scoring_event_drift_idx",
        "scoring_event_late_idx",
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: partitioning")
def test_events_table_is_partitioned_by_month_of_timestamp():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT partstrat, pg_get_partkeydef(partrelid) FROM pg_partitioned_table "
            "WHERE partrelid = %s::regclass",
            [TelemetryEvent._meta.db_table],
        )
        assert cursor.fetchone() == ("r", 'RANGE ("timestamp")')
        # Every partition carries every index of the table (partitioned indexes).
        cursor.execute(
            "SELECT c.relname, count(i.indexrelid) FROM pg_inherits h "
            "JOIN pg_class c ON c.oid = h.inhrelid "
            "LEFT JOIN pg_index i ON i.indrelid = c.oid "
            "WHERE h.inhparent = %s::regclass GROUP BY c.relname",
            [TelemetryEvent._meta.db_table],
        )
        counts = dict(cursor.fetchall())
    assert "scoring_telemetryevent_default" in counts
    assert len(counts) >= 2
    assert set(counts.values()) == {8}


def test_insert_id_is_still_unique(member):
    from django.utils import timezone

    # Unique with its timestamp: a resend carries the event's own time.
    now = timezone.now()
    TelemetryEvent.objects.create(
        insert_id="once", event="cli_invocation", distinct_id="d", member=member,
        timestamp=now, received_at=now,
    )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        TelemetryEvent.objects.create(
            insert_id="once", event="cli_invocation", distinct_id="d", member=member,
            timestamp=now, received_at=now,
        )  # fmt: skip


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: storage parameters"
)
def test_churned_tables_are_vacuumed_after_a_small_share_of_dead_rows():
    # The events table is partitioned: each partition carries the parameters.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
            ["scoring_telemetryevent"],
        )
        partitions = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)",
            [[*partitions, "scoring_metricssnapshot"]],
        )
        options = {name: dict(o.split("=") for o in opts or []) for name, opts in cursor}
    assert len(partitions) >= 2
    for table in (*partitions, "scoring_metricssnapshot"):
        assert float(options[table]["autovacuum_vacuum_scale_factor"]) <= 0.02
        assert float(options[table]["autovacuum_analyze_scale_factor"]) <= 0.02
