"""The awards' part of ``check_ledger``: every member's award points agree with the ledger."""

from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from awards.models import Award


def award_points_mismatches() -> list[str]:
    """One line per member whose award points disagree with their unrevoked awards.

    The ledger is the award rows: for every member, ``MemberMetrics.award_points`` must equal
    the sum of their unrevoked awards, and ``UserScore.award_points`` (the part of the total
    the scores show) must equal it too. A member with awards but no score row is reported.
    One aggregate query, whatever the number of members.
    """
    ledger = (
        Award.objects.filter(recipient=OuterRef("pk"), revocation__isnull=True)
        .order_by()
        .values("recipient")
        .annotate(total=Sum("points"))
        .values("total")
    )
    rows = (
        get_user_model()
        .objects.annotate(
            ledger_points=Coalesce(Subquery(ledger), Value(0)),
            metrics_points=Coalesce(F("metrics__award_points"), Value(0)),
            score_points=F("score__award_points"),
        )
        .filter(
            ~Q(metrics_points=F("ledger_points"))
            | (Q(score__isnull=False) & ~Q(score_points=F("ledger_points")))
            | (Q(score__isnull=True) & ~Q(ledger_points=0))
        )
        .order_by("username")
        .values_list("username", "ledger_points", "metrics_points", "score_points")
    )
    problems = []
    for username, ledger_points, metrics_points, score_points in rows:
        parts = []
        if metrics_points != ledger_points:
            parts.append(f"MemberMetrics.award_points is {metrics_points}")
        if score_points is None:
            parts.append("there is no UserScore row")
        elif score_points != ledger_points:
            parts.append(f"UserScore.award_points is {score_points}")
        problems.append(
            f"{username}: unrevoked awards sum to {ledger_points}, but {' and '.join(parts)}"
        )
    return problems
