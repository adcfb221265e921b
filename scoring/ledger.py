"""The scoring invariants checked by ``manage.py check_ledger`` (SPEC §5).

Each check is one set-based query returning only the rows that disagree. The activity part
of a score is not recomputed here: it depends on the day (a streak ends at midnight UTC)
and legitimately lags until the next refresh; what must always hold is that the stored
parts add up, agree with the metrics and with the tier table.
"""

from django.db.models import Case, Count, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from scoring.models import MemberMetrics, TierBadgeClaim, UserScore
from scoring.tiers import tiers_all


def _tier_for_total_sql() -> Case:
    """``tier_for_total(total_score)`` as a SQL expression (highest floor first)."""
    tiers = sorted(tiers_all(), key=lambda t: t.floor, reverse=True)
    return Case(
        *[When(total_score__gte=t.floor, then=Value(t.ordinal)) for t in tiers],
        default=Value(tiers[-1].ordinal),
        output_field=IntegerField(),
    )


def _claims_needed_sql() -> Case:
    """How many tiers have an ordinal ≤ the score's tier (claims that must exist)."""
    ordinals = sorted(t.ordinal for t in tiers_all())
    return Case(
        *[When(tier=o, then=Value(i + 1)) for i, o in enumerate(ordinals)],
        default=Value(0),
        output_field=IntegerField(),
    )


def score_mismatches() -> list[str]:
    """Every disagreement between UserScore, MemberMetrics, the tier table and the claims.

    - total_score = activity_score + award_points;
    - UserScore.award_points = MemberMetrics.award_points (0 without metrics);
    - tier = the tier of total_score;
    - a TierBadgeClaim for every tier up to the current one;
    - a member with award points in their metrics has a UserScore.
    """
    problems: list[str] = []
    for s in UserScore.objects.exclude(
        total_score=Coalesce("activity_score", 0) + Coalesce("award_points", 0)
    ).order_by("username"):
        problems.append(
            f"score of {s.username}: total {s.total_score} != activity {s.activity_score}"
            f" + awards {s.award_points}"
        )

    metric_points = MemberMetrics.objects.filter(member=OuterRef("member")).values("award_points")[
        :1
    ]
    for s in (
        UserScore.objects.annotate(metric_points=Coalesce(Subquery(metric_points), 0))
        .exclude(award_points=Coalesce(Subquery(metric_points), 0))
        .order_by("username")
    ):
        problems.append(
            f"score of {s.username}: award_points {s.award_points} != metrics award_points"
            f" {s.metric_points}"
        )

    for s in (
        UserScore.objects.annotate(expected_tier=_tier_for_total_sql())
        .exclude(tier=_tier_for_total_sql())
        .order_by("username")
    ):
        problems.append(
            f"score of {s.username}: tier {s.tier} != tier {s.expected_tier} of total"
            f" {s.total_score}"
        )

    claims = (
        TierBadgeClaim.objects.filter(member=OuterRef("member"), tier__lte=OuterRef("tier"))
        .order_by()
        .values("member")
        .annotate(n=Count("id"))
        .values("n")
    )
    for s in (
        UserScore.objects.annotate(
            claims=Coalesce(Subquery(claims), 0), needed=_claims_needed_sql()
        )
        .filter(claims__lt=_claims_needed_sql())
        .order_by("username")
    ):
        problems.append(
            f"claims of {s.username}: {s.claims} tier badge claims up to tier {s.tier},"
            f" expected {s.needed}"
        )

    for m in (
        MemberMetrics.objects.filter(~Q(award_points=0), member__score__isnull=True)
        .select_related("member")
        .order_by("member__username")
    ):
        problems.append(
            f"score of {m.member.username}: missing, but metrics hold {m.award_points} award points"
        )
    return problems
