"""Award requests: the list (HTML or JSON), approve and reject (SPEC §10 Governance)."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from awards.models import AwardRequest
from awards.request_decisions import award_request_approve, award_request_reject
from staff.forms import RequestRejectForm
from staff.htmx import HtmxHttpRequest, render_page_or_fragment
from staff.selectors.requests import RequestRow, award_request_row, award_requests_list
from swampclub.http import staff_permission_required

TEMPLATE = "staff/award_requests.html"
STATES = {choice for choice, _ in AwardRequest.State.choices}


def _may_see(user: User) -> bool:
    return user.has_perm("awards.add_award") or user.has_perm("awards.approve_award")


def _reason_visible(row: RequestRow, user: User) -> bool:
    return row.request.public or user.has_perm("awards.view_award")


@require_GET
@staff_permission_required()
def award_requests_view(request: HtmxHttpRequest) -> HttpResponse:
    """Requests newest first: ``?format=json`` for the JSON list, else the page.

    ``?state=`` filters by state as seen now. Staff with ``awards.approve_award`` decide
    here; staff who grant see their own requests and how each ended.
    """
    if not _may_see(request.user):
        raise PermissionDenied
    state = request.GET.get("state") or None
    if state is not None and state not in STATES:
        state = None
    rows = award_requests_list(state=state)
    if request.GET.get("format") == "json":
        return JsonResponse(
            {
                "requests": [
                    {
                        "id": row.request.pk,
                        "username": row.request.recipient.username,
                        "points": row.request.points,
                        "reason": row.request.reason
                        if _reason_visible(row, request.user)
                        else None,
                        "requested_by": row.request.requested_by.username,
                        "state": row.state,
                        "created_at": row.request.created_at.isoformat(),
                        "expires_at": row.request.expires_at.isoformat(),
                        "award_id": row.request.award_id,
                    }
                    for row in rows
                ]
            }
        )
    context = _page_context(request, rows=rows, state=state or "")
    return render_page_or_fragment(request, TEMPLATE, context, fragments={"request-list"})


def _get_or_404(request_id: int) -> None:
    if not AwardRequest.objects.filter(pk=request_id).exists():
        raise Http404("No such award request.")


def _done(request: HtmxHttpRequest, message: str, event: str, request_id: int) -> HttpResponse:
    if not request.htmx:
        messages.success(request, message)
        return redirect("staff:award-requests")
    context = {"row": award_request_row(request_id=request_id), "status": message}
    response = render(request, f"{TEMPLATE}#request-row", context)
    trigger_client_event(response, event, {"request_id": request_id})
    return response


def _page_context(request: HtmxHttpRequest, **extra: Any) -> dict:
    return {
        "rows": award_requests_list(),
        "mine": award_requests_list(requested_by=request.user, limit=20),
        "state": "",
        "states": AwardRequest.State.choices,
        "reject_form": RequestRejectForm(),
        "threshold": settings.AWARD_APPROVAL_THRESHOLD,
        **extra,
    }


def _refused(request: HtmxHttpRequest, message: str, status: int) -> HttpResponse:
    if request.htmx:
        return render(request, f"{TEMPLATE}#request-error", {"error": message}, status=status)
    return render(request, TEMPLATE, _page_context(request, error=message), status=status)


@require_POST
@staff_permission_required("awards.approve_award")
def award_request_approve_view(request: HtmxHttpRequest, request_id: int) -> HttpResponse:
    """Approve a request: the award is granted once. 403 for the requester or recipient.

    An expired, rejected or otherwise ungrantable request answers 409 with the reason.
    """
    _get_or_404(request_id)
    try:
        result = award_request_approve(request_id=request_id, approver=request.user)
    except ValidationError as error:
        return _refused(request, " ".join(error.messages), 409)
    if result.created:
        message = (
            f"Approved: {result.award.points:,} points granted to "
            f"{result.request.recipient.username}."
        )
    else:
        message = "Already approved: nothing was granted again."
    return _done(request, message, "award-granted", request_id)


@require_POST
@staff_permission_required("awards.approve_award")
def award_request_reject_view(request: HtmxHttpRequest, request_id: int) -> HttpResponse:
    """Reject a request with ``reason`` (422 without a valid one); it grants nothing."""
    _get_or_404(request_id)
    form = RequestRejectForm(request.POST)
    if not form.is_valid():
        return _refused(
            request, " ".join(str(e) for e in form.errors.get("reason", ["Invalid reason."])), 422
        )
    try:
        award_request_reject(
            request_id=request_id, rejecter=request.user, reason=form.cleaned_data["reason"]
        )
    except ValidationError as error:
        return _refused(request, " ".join(error.messages), 409)
    return _done(request, f"Request #{request_id} rejected.", "award-request-decided", request_id)
