"""Reads for a member's staff page: score breakdown, metrics, the active-day heatmap, tier
claims and changes, and the member's award history (a fixed number of queries per page)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from django.utils import timezone

from awards.models import Award
from members.charts import Heatmap, active_day_heatmap, heatmap_weeks_days
from scoring.models import MemberMetrics, TierBadgeClaim, TierChange, UserScore
from scoring.tiers import Tier, tier_for_total

# A member's staff page lists this many awards; the full list is on /staff/awards/.
MEMBER_HISTORY_LIMIT = 100
# The heatmap shows this many whole weeks, today's last.
HEATMAP_WEEKS = 53


@dataclass(frozen=True)
class GroupCount:
    """Events in one command group, with its share of the busiest group (for a meter)."""

    group: str
    count: int


def heatmap_build(*, active_dates: Iterable[str], today: date) -> Heatmap:
    """The staff page's heatmap: ``HEATMAP_WEEKS`` whole weeks, Monday first, ending with
    ``today``'s week (the profile's layout, ``members.charts.active_day_heatmap``)."""
    days = heatmap_weeks_days(today=today, weeks=HEATMAP_WEEKS)
    return active_day_heatmap(active_dates=active_dates, today=today, days=days)


@dataclass
class MemberDetail:
    """Everything the staff member page shows about one member, except award history."""

    member: object
    score: UserScore | None
    metrics: MemberMetrics | None
    tier: Tier
    groups: list[GroupCount]
    heatmap: Heatmap
    claims: list[TierBadgeClaim] = field(default_factory=list)
    tier_changes: list[TierChange] = field(default_factory=list)

    @property
    def total(self) -> int:
        """The total score shown (0 for a member never scored)."""
        return self.score.total_score if self.score else 0

    @property
    def activity(self) -> int:
        """The activity part of the total."""
        return self.score.activity_score if self.score else 0

    @property
    def award_points(self) -> int:
        """The award part of the total."""
        return self.score.award_points if self.score else 0

    @property
    def group_max(self) -> int:
        """The busiest group's count (the meters' maximum)."""
        return max((g.count for g in self.groups), default=0)


def member_detail(*, member, today: date | None = None) -> MemberDetail:
    """The score, metrics, heatmap, tier claims and tier changes of one member."""
    today = today or timezone.now().date()
    score = UserScore.objects.filter(member=member).first()
    metrics = MemberMetrics.objects.filter(member=member).first()
    counts = metrics.event_counts if metrics else {}
    groups = sorted(
        (GroupCount(str(g), int(c)) for g, c in counts.items()),
        key=lambda g: (-g.count, g.group),
    )
    return MemberDetail(
        member=member,
        score=score,
        metrics=metrics,
        tier=tier_for_total(score.total_score) if score else tier_for_total(0),
        groups=groups,
        heatmap=heatmap_build(active_dates=metrics.active_dates if metrics else [], today=today),
        claims=list(TierBadgeClaim.objects.filter(member=member).order_by("tier")),
        tier_changes=list(TierChange.objects.filter(member=member).order_by("-changed_at")[:50]),
    )


def award_history_for_member_staff(*, member, limit: int = MEMBER_HISTORY_LIMIT) -> list[Award]:
    """The member's latest awards, revoked ones included, with granter and revocation."""
    return list(
        Award.objects.filter(recipient=member)
        .select_related("recipient", "granted_by", "revocation", "revocation__revoked_by")
        .order_by("-granted_at", "-id")[:limit]
    )


def award_count_for_member(*, member) -> int:
    """How many awards the member has received (revoked included)."""
    return Award.objects.filter(recipient=member).count()
