"""The staff member search (the grant form's and API-key form's username autocomplete)."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from scoring.models import UserScore
from scoring.tiers import Tier, tier_for_total

User = get_user_model()


@dataclass(frozen=True)
class MemberMatch:
    """One result of the member search."""

    username: str
    total_score: int
    tier: Tier


def members_search(*, query: str, limit: int = 8) -> list[MemberMatch]:
    """Active members whose username starts with ``query`` (then contains it), best first.

    Prefix matches come first because staff usually type the start of a handle; both are
    case-insensitive. An empty query returns nothing.
    """
    query = query.strip()
    if not query or "\x00" in query:  # no username holds NUL, and PostgreSQL refuses it
        return []
    base = User.objects.filter(is_active=True).select_related("score")
    found = list(base.filter(username__istartswith=query).order_by("username")[:limit])
    if len(found) < limit:
        seen = [u.pk for u in found]
        found += list(
            base.filter(username__icontains=query)
            .exclude(pk__in=seen)
            .order_by("username")[: limit - len(found)]
        )
    matches = []
    for user in found:
        score = _score_of(user)
        total = score.total_score if score else 0
        matches.append(MemberMatch(user.username, total, tier_for_total(total)))
    return matches


def _score_of(user) -> UserScore | None:
    try:
        return user.score
    except UserScore.DoesNotExist:
        return None
