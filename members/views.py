"""Member-facing pages: the leaderboard and profiles (SPEC §8)."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from members import leaderboard as boards
from members import selectors
from members.explain import score_explanation_for_member
from swampclub.http import HtmxHttpRequest


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The site root shows the leaderboard."""
    return redirect("members:leaderboard")


def _board_url(window: str, cursor: str | None) -> str:
    query = {"window": window}
    if cursor:
        query["cursor"] = cursor
    return f"{reverse('members:leaderboard')}?{urlencode(query)}"


@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    """A page of the all-time or window board, with "where am I" for a logged-in member.

    Bad ``window`` or ``cursor`` values answer 400 with the page explaining which one.
    """
    window = request.GET.get("window", "all")
    if window not in boards.WINDOWS:
        return _bad_board_request(request, "window", "Choose one of: all, 7d, 30d.")
    cursor = None
    if request.GET.get("cursor"):
        try:
            cursor = boards.Cursor.decode(request.GET["cursor"], window=window)
        except boards.InvalidCursor:
            return _bad_board_request(request, "cursor", "That page link is not valid.")
    member = request.user if request.user.is_authenticated else None
    page = boards.leaderboard_page(window=window, cursor=cursor, now=timezone.now(), member=member)
    me_on_board = page.member_cursor is not None
    where_am_i = _board_url(window, page.member_cursor) + "#me" if me_on_board else None

    context = {
        "page": page,
        "window": window,
        "windows": [("all", "All time"), ("7d", "Last 7 days"), ("30d", "Last 30 days")],
        "next_url": _board_url(window, page.next_cursor) if page.next_cursor else None,
        "prev_url": _board_url(window, page.prev_cursor) if page.prev_cursor else None,
        "top_url": _board_url(window, None) if cursor else None,
        "where_am_i": where_am_i,
        "me_on_board": me_on_board,
        "me_username": request.user.get_username() if me_on_board else None,
    }
    return render(request, "members/leaderboard.html", context)


def _bad_board_request(request: HttpRequest, field: str, message: str) -> HttpResponse:
    return render(
        request,
        "members/leaderboard_error.html",
        {"field": field, "message": message, "top_url": reverse("members:leaderboard")},
        status=400,
    )


@require_GET
def profile(request: HtmxHttpRequest, username: str) -> HttpResponse:
    """A member's profile; an HTMX request for ``?page=N`` gets just the next award rows.

    Without JavaScript the "load more" link loads the full page at ``?page=N``. 404 for an
    unknown (or deactivated) member, for a page number that is not a positive integer, and
    for a page past the last one (never a 5xx, however large the number).
    """
    member = selectors.member_get_for_profile(username=username)
    if member is None:
        raise Http404("No such member.")
    try:
        page_number = int(request.GET.get("page", "1"))
    except ValueError:
        raise Http404("No such page.") from None
    if page_number < 1:
        raise Http404("No such page.")

    awards = selectors.award_page_for_member(member=member, viewer=request.user, page=page_number)
    if page_number > 1 and not awards.rows:
        raise Http404("No such page.")  # past the last page, however far
    is_owner = request.user.is_authenticated and request.user.pk == member.pk
    base = {"member": member, "awards": awards, "is_owner": is_owner}
    if request.htmx and not request.htmx.boosted:
        response = render(request, "members/profile.html#award-rows", base)
    else:
        now = timezone.now()
        breakdown = selectors.score_breakdown_for_member(member=member)
        explanation = score_explanation_for_member(member=member, viewer=request.user)
        context = {
            "explanation": explanation,
            **base,
            "breakdown": breakdown,
            "award_counts": explanation.award_counts,
            "claims": selectors.tier_claims_for_member(member=member),
            "chart": selectors.score_chart_for_member(
                member=member, current_total=breakdown.total, now=now
            ),
            "heatmap": selectors.activity_heatmap_for_member(member=member, today=now.date()),
        }
        response = render(request, "members/profile.html", context)
    # The same URL answers with a fragment or a page depending on HX-Request.
    patch_vary_headers(response, ("HX-Request",))
    return response
