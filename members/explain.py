"""A member's whole score explained: the activity lines (``scoring.explain``) and the
awards that make up the rest, read so that the lines add up to the stored total."""

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from django.contrib.auth.models import AnonymousUser, User

from awards.models import Award
from scoring.explain import ActivityExplanation, ExplanationUnavailable, activity_explanation
from scoring.formula import exact_text
from scoring.models import UserScore

# Re-reads when an award lands between reading the score and reading the awards.
_READ_ATTEMPTS = 2


@dataclass(frozen=True)
class AwardLine:
    """An award in the explanation; ``reason`` is None when the viewer may not see it."""

    id: int
    points: int
    revoked: bool
    public: bool
    reason: str | None
    granted_at: datetime


@dataclass(frozen=True)
class ScoreExplanation:
    """The stored score of a member, line by line: ``activity.activity_score`` +
    ``award_points`` (the unrevoked awards) = ``total_score``, as stored."""

    username: str
    # None for a score stored before explanations whose inputs changed since (it is
    # explained after its next refresh); the awards are listed all the same.
    activity: ActivityExplanation | None
    awards: list[AwardLine]
    award_points: int
    total_score: int
    computed_at: datetime | None

    @property
    def counted_awards(self) -> list[AwardLine]:
        """The awards that count (not revoked)."""
        return [a for a in self.awards if not a.revoked]

    @property
    def award_counts(self) -> dict[str, int]:
        """How many awards the member holds, how many were revoked, and the counted sum."""
        return {
            "total": len(self.awards),
            "revoked": sum(1 for a in self.awards if a.revoked),
            "counted_points": sum(a.points for a in self.awards if not a.revoked),
        }


def _awards(member: User, *, show_private: bool) -> list[AwardLine]:
    rows = (
        Award.objects.filter(recipient=member)
        .order_by("-granted_at", "-id")
        .values_list("id", "points", "revocation__id", "public", "reason", "granted_at")
    )
    return [
        AwardLine(
            id=award_id,
            points=points,
            revoked=revocation_id is not None,
            public=public,
            reason=reason if public or show_private else None,
            granted_at=granted_at,
        )
        for award_id, points, revocation_id, public, reason, granted_at in rows
    ]


def score_explanation_for_member(
    *, member: User, viewer: User | AnonymousUser | None = None
) -> ScoreExplanation:
    """How ``member``'s stored total is made, as ``viewer`` may see it.

    Privacy as in the award history: a private award shows its points, never its reason
    (except to the member themself). The awards are read after the score; if an award was
    granted or revoked in between (the counted sum differs from the stored
    ``award_points``) both are read again, so the lines add up to the stored total. Three
    queries (the score, its rules version, the awards); two for a member loaded with
    ``select_related("score", "metrics")``.
    """
    show_private = bool(viewer is not None and viewer.is_authenticated and viewer.pk == member.pk)
    user_model = type(member)
    # A member loaded with select_related("score", "metrics") costs no query for either.
    metrics = getattr(member, "metrics", None) if user_model.metrics.is_cached(member) else None
    if user_model.score.is_cached(member):
        score = getattr(member, "score", None)
    else:
        score = UserScore.objects.filter(member=member).first()
    awards = _awards(member, show_private=show_private)
    for _ in range(_READ_ATTEMPTS):
        counted = sum(a.points for a in awards if not a.revoked)
        if score is None or counted == score.award_points:
            break
        # A grant or revocation may have committed between the two reads: read the score
        # again, and the awards too only if the score moved (else the ledger itself
        # disagrees, which ``check_ledger`` reports, and re-reading would not help).
        fresh = UserScore.objects.filter(member=member).first()
        moved = fresh is None or fresh.computed_at != score.computed_at
        score = fresh
        if score is None or counted == score.award_points or not moved:
            break
        awards = _awards(member, show_private=show_private)
    try:
        activity = activity_explanation(score=score, metrics=metrics)
    except ExplanationUnavailable:
        activity = None
    return ScoreExplanation(
        username=member.get_username(),
        activity=activity,
        awards=awards,
        award_points=score.award_points if score else 0,
        total_score=score.total_score if score else 0,
        computed_at=score.computed_at if score else None,
    )


def _number(value: Fraction | int) -> int | str:
    """A whole number as an int, anything else as exact text."""
    text = exact_text(value)
    return int(text) if "." not in text and "/" not in text else text


def score_explanation_json(explanation: ScoreExplanation) -> dict:
    """The ``GET /api/u/<username>/score/explain`` document (SPEC §10)."""
    a = explanation.activity
    if a is None:
        raise ExplanationUnavailable("this score is explained after its next refresh")
    return {
        "username": explanation.username,
        "rules_version": a.rules_version,
        "as_of": a.as_of.isoformat() if a.as_of else None,
        "groups": [
            {
                "group": line.group,
                "count": line.count,
                "points": _number(line.points),
                "capped_points": _number(line.capped_points),
            }
            for line in a.groups
        ],
        "base_points": _number(a.base_points),
        "diversity_points": _number(a.diversity_points),
        "streak": {"days": a.streak_days, "multiplier": exact_text(a.streak_multiplier)},
        "rolling": {
            "active_days": a.rolling_active_days,
            "multiplier": exact_text(a.rolling_multiplier),
        },
        "activity_score": a.activity_score,
        "awards": [
            {"id": award.id, "points": award.points, "revoked": award.revoked}
            for award in explanation.awards
        ],
        "award_points": explanation.award_points,
        "total_score": explanation.total_score,
    }
