"""Member-facing award JSON (SPEC §8): ``GET /api/u/<username>/awards``."""

from django.contrib.auth import get_user_model
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from awards.selectors import award_history_for_member
from swampclub.http import json_error

# The most awards one response may be asked for with ``?limit=``.
LIMIT_MAX = 1000


# Read-only and cookie-free: exempt from CSRF so that any other method gets the JSON 405
# below rather than the CSRF middleware's 403 page.
@csrf_exempt
def member_awards(request: HttpRequest, username: str) -> JsonResponse:
    """A member's award history, newest first: ``{"awards": [{"id", "points", "reason",
    "category", "granted_at", "revoked"}]}``.

    Public: a private award's ``reason`` is null; the staff note is never included. Every
    award is returned unless ``?limit=N`` (1..1000) asks for the newest N. Unknown or
    deactivated member → 404 ``{"error": "not_found"}``; a bad limit → 400 naming the
    field. Two queries. Methods other than GET and HEAD → 405 JSON with ``Allow``.
    """
    if request.method not in ("GET", "HEAD"):
        response = json_error(405, "method_not_allowed", message="use GET")
        response["Allow"] = "GET, HEAD"
        return response
    limit = None
    raw_limit = request.GET.get("limit")
    if raw_limit is not None:
        # The length check first: int() refuses numbers of thousands of digits.
        if not raw_limit.isdecimal() or len(raw_limit) > 10 or not 1 <= int(raw_limit) <= LIMIT_MAX:
            return json_error(
                400,
                "invalid_request",
                field="limit",
                message=f"must be a whole number from 1 to {LIMIT_MAX}",
            )
        limit = int(raw_limit)
    member = get_user_model().objects.filter(username=username, is_active=True).first()
    if member is None:
        return json_error(404, "not_found")
    # The JSON is public and cookie-free: everyone sees what an anonymous visitor sees, and
    # (SPEC §8) a private award's category code is given, only its reason is null.
    entries = award_history_for_member(member=member, viewer=None, limit=limit, category_given=True)
    return JsonResponse(
        {
            "awards": [
                {
                    "id": entry.id,
                    "points": entry.points,
                    "reason": entry.reason,
                    "category": entry.category,
                    "granted_at": entry.granted_at.isoformat(),
                    "revoked": entry.revoked,
                }
                for entry in entries
            ]
        }
    )
