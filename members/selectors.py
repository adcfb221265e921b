"""Reads behind a member's profile: the score breakdown, award history pages, tier badges,
the score chart and the activity heatmap. The leaderboards are ``members.leaderboard``.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import (
    Count,
    Max,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, TruncDate

from awards.models import Award
from awards.selectors import AwardRow, award_history_for_member
from members import charts
from members.leaderboard.board import tier_or_placeholder
from scoring.models import ScoreHistory, TierBadgeClaim
from scoring.tiers import Tier

AWARD_PAGE_SIZE = 20
# The largest OFFSET a page may need: beyond it no table has rows, and beyond 2**63 - 1 the
# database refuses the number.
MAX_OFFSET = 2**62
CHART_DAYS = 365


@dataclass(frozen=True)
class Breakdown:
    """A member's total and its parts; ``activity + awards == total`` always."""

    total: int
    activity: int
    awards: int
    tier: Tier
    streak_days: int
    active_days: int
    computed_at: datetime | None


@dataclass(frozen=True)
class AwardPage:
    """One page of a member's award history, newest first."""

    rows: list[AwardRow]
    page: int
    has_next: bool


def member_get_for_profile(*, username: str) -> User | None:
    """The active member named ``username`` with score and metrics joined, or None."""
    return (
        User.objects.select_related("score", "metrics")
        .filter(username=username, is_active=True)
        .first()
    )


def score_breakdown_for_member(*, member: User) -> Breakdown:
    """The member's total split into activity and awards, both from their UserScore row.

    Both parts come from the same row the total was written to, so they sum to it exactly;
    a member with no score row yet shows zeros in the lowest tier.
    """
    score = getattr(member, "score", None)
    if score is None:
        return Breakdown(0, 0, 0, tier_or_placeholder(1), 0, 0, None)
    return Breakdown(
        total=score.total_score,
        activity=score.activity_score,
        awards=score.award_points,
        tier=tier_or_placeholder(score.tier),
        streak_days=score.streak_days,
        active_days=score.active_days,
        computed_at=score.computed_at,
    )


def award_counts_for_member(*, member: User) -> dict[str, int]:
    """How many awards the member holds, how many were revoked, and the unrevoked sum."""
    return Award.objects.filter(recipient=member).aggregate(
        total=Count("pk"),
        revoked=Count("pk", filter=Q(revocation__isnull=False)),
        counted_points=Coalesce(Sum("points", filter=Q(revocation__isnull=True)), 0),
    )


def award_page_for_member(
    *,
    member: User,
    viewer: User | AnonymousUser | None,
    page: int = 1,
    page_size: int = AWARD_PAGE_SIZE,
) -> AwardPage:
    """One page of ``member``'s awards, newest first, as ``viewer`` may see them.

    The rows come from ``awards.selectors.award_history_for_member`` (which decides what a
    viewer sees of a private award); revoked awards are included and flagged (the page
    strikes them through). The staff note is never loaded. One query.
    """
    offset = (page - 1) * page_size
    if offset > MAX_OFFSET:
        # Past any table's end, and past what SQL's OFFSET accepts (a 64-bit integer).
        return AwardPage(rows=[], page=page, has_next=False)
    rows = award_history_for_member(
        member=member, viewer=viewer, offset=offset, limit=page_size + 1
    )
    return AwardPage(rows=rows[:page_size], page=page, has_next=len(rows) > page_size)


def tier_claims_for_member(*, member: User) -> list[tuple[Tier, datetime, int]]:
    """The tier badges the member has claimed, lowest tier first: (tier, claimed at, total)."""
    claims = TierBadgeClaim.objects.filter(member=member).order_by("tier")
    return [
        (tier_or_placeholder(c.tier), c.claimed_at, c.total_at_claim)
        for c in claims.only("tier", "claimed_at", "total_at_claim")
    ]


def score_chart_for_member(*, member: User, current_total: int, now: datetime) -> charts.ScoreChart:
    """The score-over-time chart for the last ``CHART_DAYS`` days.

    Two queries however long the history: the baseline (the last row at or before the
    chart's start) and the last row of each day inside the range, so the chart has at most
    one step per day.
    """
    start = now - timedelta(days=CHART_DAYS)
    history = ScoreHistory.objects.filter(member=member)
    baseline = (
        history.filter(recorded_at__lte=start)
        .order_by("-recorded_at", "-id")
        .values_list("total_score", flat=True)
        .first()
    )
    day_ends = (
        history.filter(recorded_at__gt=start)
        .annotate(day=TruncDate("recorded_at"))
        .values("day")
        .annotate(last=Max("recorded_at"))
        .values("last")
    )
    rows = list(
        history.filter(recorded_at__in=Subquery(day_ends))
        .order_by("recorded_at", "id")
        .values_list("recorded_at", "total_score")
    )
    return charts.score_chart(
        baseline=baseline, rows=rows, current_total=current_total, start=start, end=now
    )


def activity_heatmap_for_member(*, member: User, today: date) -> charts.Heatmap:
    """The active-day heatmap for the year ending ``today`` from MemberMetrics.active_dates."""
    metrics = getattr(member, "metrics", None)
    dates = metrics.active_dates if metrics is not None else []
    return charts.active_day_heatmap(active_dates=dates, today=today)
