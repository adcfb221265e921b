"""Member-facing JSON: the leaderboard (``GET /api/leaderboard``, shape in docs/members.md)
and a score's explanation (``GET /api/u/<username>/score/explain``, docs/scoring.md)."""

import re

from django.contrib.auth import get_user_model
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from members import leaderboard as boards
from members.explain import score_explanation_for_member, score_explanation_json
from scoring.explain import ExplanationUnavailable
from swampclub.http import json_error

# What a cursor looks like (base64url without padding); ``/api/schema`` declares the same.
CURSOR_PATTERN = re.compile(r"[A-Za-z0-9_-]*")


# Read-only and cookie-free: exempt from CSRF so that any other method (PUT, PATCH, QUERY...)
# gets require_GET's 405 with ``Allow`` rather than the CSRF middleware's 403 page.
@csrf_exempt
@require_GET
def leaderboard(request: HttpRequest) -> JsonResponse:
    """A page of a board as JSON; follow ``next_cursor`` (or ``prev_cursor``) for more.

    400 ``{"error": "invalid", "field": "window"|"cursor", "message"}`` for a window not on
    the list or a cursor that is not base64url text (``CURSOR_PATTERN``, as ``/api/schema``
    declares it); a well-formed cursor that names no place on this board (another window's,
    or made up) → 404 ``{"error": "not_found", "field": "cursor", "message"}``.
    """
    window = request.GET.get("window", "all")
    if window not in boards.WINDOWS:
        return json_error(400, "invalid", field="window", message="one of: all, 7d, 30d")
    cursor = None
    if request.GET.get("cursor"):
        text = request.GET["cursor"]
        if not CURSOR_PATTERN.fullmatch(text):
            return json_error(400, "invalid", field="cursor", message="must be base64url text")
        try:
            cursor = boards.Cursor.decode(text, window=window)
        except boards.InvalidCursor as exc:
            return json_error(404, "not_found", field="cursor", message=str(exc))
    page = boards.leaderboard_page(window=window, cursor=cursor, now=timezone.now())
    entries = []
    for entry in page.entries:
        row = {
            "rank": entry.rank,
            "username": entry.username,
            "total_score": entry.total_score,
            "tier": {"ordinal": entry.tier.ordinal, "name": entry.tier.name},
        }
        if entry.gain is not None:
            row["gain"] = entry.gain
        entries.append(row)
    return JsonResponse(
        {
            "window": page.window,
            "window_start": page.window_start.isoformat() if page.window_start else None,
            "entries": entries,
            "next_cursor": page.next_cursor,
            "prev_cursor": page.prev_cursor,
        }
    )


@csrf_exempt
def score_explain(request: HttpRequest, username: str) -> JsonResponse:
    """How a member's stored score is made (SPEC §10 "Explain"): the groups, base,
    diversity, streak and rolling multipliers, the activity, the awards and the total.

    Multipliers are exact strings (``"1.04"``, ``"16/15"``); the lines add up to the stored
    ``activity_score`` and ``total_score``. Private awards show their points only (this
    document carries no reasons). Unknown or deactivated member → 404; a score written
    before explanations were stored whose inputs changed since → 409 until its next
    refresh. Methods other than GET and HEAD → 405 JSON with ``Allow``.
    """
    if request.method not in ("GET", "HEAD"):
        response = json_error(405, "method_not_allowed", message="use GET")
        response["Allow"] = "GET, HEAD"
        return response
    member = get_user_model().objects.filter(username=username, is_active=True).first()
    if member is None:
        return json_error(404, "not_found")
    try:
        document = score_explanation_json(score_explanation_for_member(member=member))
    except ExplanationUnavailable as exc:
        return json_error(409, "not_explainable", message=str(exc))
    return JsonResponse(document)
