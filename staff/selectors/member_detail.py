"""Reads for a member's staff page: score breakdown, metrics, the active-day heatmap, tier
claims and changes, and the member's award history (a fixed number of queries per page)."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.utils import timezone

from awards.models import Award
from scoring.models import MemberMetrics, TierBadgeClaim, TierChange, UserScore
from scoring.tiers import Tier, tier_for_total, tier_get

# A member's staff page lists this many awards; the full list is on /staff/awards/.
MEMBER_HISTORY_LIMIT = 100
HEATMAP_WEEKS = 53
HEATMAP_CELL = 11
HEATMAP_GAP = 2
HEATMAP_TOP = 14
HEATMAP_LEFT = 26


@dataclass(frozen=True)
class GroupCount:
    """Events in one command group, with its share of the busiest group (for a meter)."""

    group: str
    count: int


@dataclass(frozen=True)
class HeatCell:
    """One day of the heatmap, positioned for SVG."""

    day: date
    x: int
    y: int
    active: bool


@dataclass(frozen=True)
class Heatmap:
    """A year of active days, one column per week (Monday at the top)."""

    cells: list[HeatCell]
    months: list[tuple[int, str]]  # (x, label)
    width: int
    height: int
    active_days: int
    first: date
    last: date

    @property
    def weekday_labels(self) -> list[tuple[int, str]]:
        """(y, label) for Monday, Wednesday and Friday rows."""
        step = HEATMAP_CELL + HEATMAP_GAP
        return [(HEATMAP_TOP + day * step + HEATMAP_CELL - 2, name) for day, name in WEEKDAYS]


WEEKDAYS = [(0, "Mon"), (2, "Wed"), (4, "Fri")]


def heatmap_build(*, active_dates: Iterable[str], today: date) -> Heatmap:
    """Lay out the ``HEATMAP_WEEKS`` weeks ending with ``today``'s week as SVG cells.

    ``active_dates`` are ISO dates; dates outside the window are ignored.
    """
    step = HEATMAP_CELL + HEATMAP_GAP
    last = today
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=HEATMAP_WEEKS - 1)
    active = set()
    for value in active_dates:
        try:
            day = date.fromisoformat(value)
        except (TypeError, ValueError):
            continue
        if first <= day <= last:
            active.add(day)
    cells = []
    months = []
    day = first
    while day <= last:
        week = (day - first).days // 7
        x = HEATMAP_LEFT + week * step
        if day.day == 1 or (day == first):
            months.append((x, day.strftime("%b")))
        cells.append(HeatCell(day, x, HEATMAP_TOP + day.weekday() * step, day in active))
        day += timedelta(days=1)
    # A label for a partial first month would collide with the next one.
    if len(months) > 1 and months[1][0] - months[0][0] < 3 * step:
        months.pop(0)
    return Heatmap(
        cells=cells,
        months=months,
        width=HEATMAP_LEFT + HEATMAP_WEEKS * step,
        height=HEATMAP_TOP + 7 * step,
        active_days=len(active),
        first=first,
        last=last,
    )


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


def tier_name(ordinal: int) -> str:
    """The tier's name, or ``"tier N"`` for an ordinal no longer configured."""
    try:
        return tier_get(ordinal).name
    except KeyError:
        return f"tier {ordinal}"
