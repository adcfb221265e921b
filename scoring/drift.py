"""Reads about the clients sending telemetry: events per CLI version, drift, late events.

Ingest stores each event's CLI version (``User-Agent: swamp-cli/<version>``) and the known
properties whose type differed from the wire format (``scoring.ingest.wire``); the consumer
marks events too old to count as late. These selectors sum them for the staff dashboard,
set-based, over the indexes made for them (``scoring_event_version_idx``,
``scoring_event_drift_idx``, ``scoring_event_late_idx``).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from scoring.models import TelemetryEvent
from swampclub.dialect import json_array_items_join

RECENT_DAYS = 7


@dataclass
class VersionSummary:
    """One CLI version's events in the window and its drift per field."""

    version: str
    events: int = 0
    drifted_events: int = 0
    drift: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientsSummary:
    """What the dashboard's "Clients" panel shows."""

    since: datetime
    versions: list[VersionSummary]
    late_events: int
    late_after_days: int


def clients_summary(*, days: int = RECENT_DAYS, now: datetime | None = None) -> ClientsSummary:
    """Events received in the last ``days`` days per CLI version (newest version name
    first, "" for other clients last), how many of them drifted and on which fields, and how
    many events received in the window were late. Three queries whatever the volume."""
    since = (now or timezone.now()) - timedelta(days=days)
    recent = TelemetryEvent.objects.filter(received_at__gte=since)
    versions: dict[str, VersionSummary] = {}
    for row in recent.values("cli_version").annotate(
        events=Count("id"), drifted=Count("id", filter=Q(drift__isnull=False))
    ):
        versions[row["cli_version"]] = VersionSummary(
            row["cli_version"], row["events"], row["drifted"]
        )
    for version, name, count in _drift_per_field(since):
        summary = versions.setdefault(version, VersionSummary(version))
        summary.drift[name] = count
    for summary in versions.values():
        summary.drift = dict(sorted(summary.drift.items(), key=lambda kv: (-kv[1], kv[0])))
    known = sorted((v for v in versions.values() if v.version), key=lambda v: v.version)[::-1]
    unknown = [v for v in versions.values() if not v.version]
    late = recent.filter(late=True).count()
    return ClientsSummary(
        since=since,
        versions=known + unknown,
        late_events=late,
        late_after_days=settings.TELEMETRY_MAX_AGE_DAYS,
    )


def _drift_per_field(since: datetime) -> list[tuple[str, str, int]]:
    """``(version, field, events)`` for the drifted events received since ``since``."""
    quote = connection.ops.quote_name
    table = quote(TelemetryEvent._meta.db_table)
    fields = json_array_items_join("e.drift", "f")
    with connection.cursor() as cursor:
        cursor.execute(
            # Identifiers from model metadata; the time is a parameter.
            f"SELECT e.cli_version, f.value, count(*) FROM {table} e {fields} "  # noqa: S608
            "WHERE e.drift IS NOT NULL AND e.received_at >= %s "
            "GROUP BY e.cli_version, f.value",
            [connection.ops.adapt_datetimefield_value(since)],
        )
        return [(version, str(name), int(count)) for version, name, count in cursor.fetchall()]
