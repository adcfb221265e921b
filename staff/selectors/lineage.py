"""Staff lineage of a member's score: the telemetry behind each command-group count and
the events that were rejected, each list one query however many events the member has."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import F, Window
from django.db.models.fields.json import KT
from django.db.models.functions import Lower, RowNumber

from scoring.models import TelemetryEvent

# Events shown per command group, newest first; the group's count says how many there are.
LINEAGE_PER_GROUP = 50
REJECTED_LIMIT = 50
# A member's lineage is cached under its group counts (see ``event_lineage_cached``) for at
# most this long.
LINEAGE_CACHE_S = 600


@dataclass(frozen=True)
class LineageEvent:
    """One stored event as staff see it in the lineage."""

    id: int
    insert_id: str
    timestamp: datetime
    received_at: datetime
    cli_version: str | None
    error: str = ""
    event: str = "cli_invocation"


@dataclass
class GroupLineage:
    """The latest events of one command group (at most ``LINEAGE_PER_GROUP``)."""

    group: str
    count: int
    events: list[LineageEvent] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        """More events count for this group than are listed."""
        return self.count > len(self.events)


def event_lineage_for_member(
    *, member: User, counts: dict[str, int], per_group: int = LINEAGE_PER_GROUP
) -> list[GroupLineage]:
    """The latest ``per_group`` processed ``cli_invocation`` events of each command group
    of ``member``, groups sorted by name, with the group's count from ``counts`` (the
    member's ``MemberMetrics.event_counts``). One query: a window function numbers each
    group's events newest first and keeps the first ``per_group``.
    """
    rows = (
        TelemetryEvent.objects.filter(member=member, event="cli_invocation")
        .processed()
        .annotate(
            group=Lower(KT("properties__invocation__command")),
            cli=F("cli_version"),
            rank=Window(
                RowNumber(),
                partition_by=[Lower(KT("properties__invocation__command"))],
                order_by=[F("timestamp").desc(), F("id").desc()],
            ),
        )
        .filter(rank__lte=per_group)
        .order_by("group", "-timestamp", "-id")
        .values_list("id", "insert_id", "timestamp", "received_at", "cli", "group")
    )
    groups = {
        str(group): GroupLineage(group=str(group), count=int(count))
        for group, count in counts.items()
    }
    for event_id, insert_id, timestamp, received_at, cli, group in rows:
        lineage = groups.setdefault(group, GroupLineage(group=group, count=0))
        lineage.events.append(
            LineageEvent(event_id, insert_id, timestamp, received_at, cli if cli else None)
        )
    return sorted(groups.values(), key=lambda g: g.group)


def event_lineage_cached(
    *, member: User, counts: dict[str, int], per_group: int = LINEAGE_PER_GROUP
) -> list[GroupLineage]:
    """``event_lineage_for_member``, cached under the member and their group counts.

    The lineage lists processed events only, and the consumer folds each processed
    ``cli_invocation`` into ``counts`` (``MemberMetrics.event_counts``) in the same
    transaction that marks it processed, so a new event in any group changes the key. The
    query reads every processed event of the member (3,600 rows, 13 ms, for the busiest
    member at full size) and plans all monthly partitions, so a page opened again
    without new telemetry reuses the result. The timeout bounds what the key cannot see:
    events removed by retention.
    """
    fingerprint = json.dumps([member.pk, per_group, sorted(counts.items())])
    key = "staff:lineage:" + hashlib.sha256(fingerprint.encode()).hexdigest()
    lineage = cache.get(key)
    if lineage is None:
        lineage = event_lineage_for_member(member=member, counts=counts, per_group=per_group)
        cache.set(key, lineage, timeout=LINEAGE_CACHE_S)
    return lineage


def rejected_events_for_member(*, member: User, limit: int = REJECTED_LIMIT) -> list[LineageEvent]:
    """The member's latest rejected events (any type) with the reason each was rejected.
    One query."""
    rows = (
        TelemetryEvent.objects.filter(member=member)
        .rejected()
        .annotate(cli=F("cli_version"))
        .order_by("-received_at", "-id")
        .values_list("id", "insert_id", "timestamp", "received_at", "cli", "error", "event")[:limit]
    )
    return [
        LineageEvent(event_id, insert_id, timestamp, received_at, cli or None, error, name)
        for event_id, insert_id, timestamp, received_at, cli, error, name in rows
    ]
