"""Member-facing score JSON (SPEC §8): ``GET /api/u/<username>/score``."""

from django.contrib.auth import get_user_model
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from scoring.models import UserScore
from scoring.tiers import tier_get, tiers_all
from swampclub.http import json_error


# Read-only and cookie-free: exempt from CSRF so that any other method (PUT, PATCH, QUERY...)
# gets require_GET's 405 with ``Allow`` rather than the CSRF middleware's 403 page.
@csrf_exempt
@require_GET
def member_score(request: HttpRequest, username: str) -> JsonResponse:
    """A member's score: ``{"username", "total_score", "activity_score", "award_points",
    "tier": {"ordinal", "name"}, "streak_days", "computed_at"}``.

    A member the score batch has not reached yet answers zeros, the lowest tier and
    ``computed_at: null``. Unknown or deactivated member → 404 ``{"error": "not_found"}``.
    One query.
    """
    member = (
        get_user_model()
        .objects.filter(username=username, is_active=True)
        .select_related("score")
        .first()
    )
    if member is None:
        return json_error(404, "not_found")
    score: UserScore | None = getattr(member, "score", None)
    tier = tier_get(score.tier) if score else tiers_all()[0]
    return JsonResponse(
        {
            "username": member.username,
            "total_score": score.total_score if score else 0,
            "activity_score": score.activity_score if score else 0,
            "award_points": score.award_points if score else 0,
            "tier": {"ordinal": tier.ordinal, "name": tier.name},
            "streak_days": score.streak_days if score else 0,
            "computed_at": score.computed_at.isoformat() if score else None,
        }
    )
