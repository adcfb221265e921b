"""JSON interface of the leaderboard: ``GET /api/leaderboard`` (shape in docs/members.md)."""

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from members import selectors
from swampclub.http import json_error


@require_GET
def leaderboard(request: HttpRequest) -> JsonResponse:
    """A page of a board as JSON; follow ``next_cursor`` (or ``prev_cursor``) for more.

    400 ``{"error": "invalid", "field": "window"|"cursor", "message"}`` for bad parameters.
    """
    window = request.GET.get("window", "all")
    if window not in selectors.WINDOWS:
        return json_error(400, "invalid", field="window", message="one of: all, 7d, 30d")
    cursor = None
    if request.GET.get("cursor"):
        try:
            cursor = selectors.Cursor.decode(request.GET["cursor"], window=window)
        except selectors.InvalidCursor as exc:
            return json_error(400, "invalid", field="cursor", message=str(exc))
    page = selectors.leaderboard_page(window=window, cursor=cursor, now=timezone.now())
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
