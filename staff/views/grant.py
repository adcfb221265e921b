"""The grant form (SPEC §8 form contract) with its inline validation, preview and search."""

from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from audit.middleware import audit_exempt
from awards.models import Award
from awards.recipients import grant_preview
from awards.requests import GovernedResult, RequestConflict, award_grant_or_request
from awards.services import AwardConflict
from scoring.scores import ScoreResult
from scoring.tiers import tier_for_total
from staff.forms import AwardGrantForm, PreviewForm, add_service_error, idempotency_key_new
from staff.htmx import HtmxHttpRequest, htmx_target
from staff.selectors.dashboard import awards_recent
from staff.selectors.member_search import members_search
from swampclub.http import staff_permission_required

TEMPLATE = "staff/award_grant.html"
# Fields whose wrapper validates itself on change (``id="field-<name>"`` in the template).
VALIDATED_FIELDS = {"username", "points", "reason", "category", "staff_note"}


def _page_context(request: HtmxHttpRequest, form: AwardGrantForm | None, **extra: Any) -> dict:
    return {
        "form": form,
        "recent_awards": awards_recent(limit=8),
        "show_budget": True,
        **extra,
    }


@require_http_methods(["GET", "POST"])
@staff_permission_required("awards.add_award")
def award_grant_view(request: HtmxHttpRequest) -> HttpResponse:
    """Grant an award: the page (GET), its form fragment (HTMX POST) or a redirect (POST).

    Invalid input creates nothing and answers 422 with each error beside its field. A valid
    HTMX POST answers the emptied form (a new idempotency key), a status line and the
    ``award-granted`` event; a plain POST redirects to the member's staff page. Submitting
    the same rendering twice (same ``idempotency_key``) grants once and says so.
    """
    if request.method == "GET":
        if htmx_target(request) == "recent-awards":
            return render(request, f"{TEMPLATE}#recent-awards", _page_context(request, None))
        initial = {}
        if username := request.GET.get("username", "").strip()[:150]:
            initial["username"] = username
        return render(request, TEMPLATE, _page_context(request, AwardGrantForm(initial=initial)))

    form = AwardGrantForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = award_grant_or_request(
                recipient=data["username"],
                points=data["points"],
                reason=data["reason"],
                idempotency_key=data["idempotency_key"],
                granted_by=request.user,
                source=Award.Source.FORM,
                category=data["category"],
                public=data["public"],
                staff_note=data["staff_note"],
            )
        except ValidationError as error:
            add_service_error(form, error)
            if isinstance(error, AwardConflict | RequestConflict):
                # This rendering was already used for a different award; a new key lets the
                # staff member grant the edited values deliberately with the next submit.
                data = cast(QueryDict, form.data).copy()
                data["idempotency_key"] = idempotency_key_new()
                form.data = data
        else:
            return _granted(request, form, result)
    if request.htmx:
        context = {"form": form, "show_budget": True}
        return render(request, f"{TEMPLATE}#grant-form", context, status=422)
    return render(request, TEMPLATE, _page_context(request, form), status=422)


def _granted(
    request: HtmxHttpRequest, form: AwardGrantForm, result: GovernedResult
) -> HttpResponse:
    data = form.cleaned_data
    member = data["username"]
    if result.request is not None:
        status = _requested_message(member.username, result)
    elif result.created:
        status = _granted_message(member.username, data["points"], result.score)
    else:
        status = (
            f"Already granted: this form was submitted before, so {member.username} "
            "was not given the points again."
        )
    if not request.htmx:
        (messages.success if result.created else messages.info)(request, status)
        return redirect("staff:member-detail", username=member.username)
    initial = {"keep_member": data["keep_member"]}
    if data["keep_member"]:
        initial["username"] = member.username
    context = {
        "form": AwardGrantForm(initial=initial),
        "status": status,
        "status_kind": "ok" if result.created else "info",
        "show_budget": True,
    }
    response = render(request, f"{TEMPLATE}#grant-form", context)
    if result.created and result.request is not None:
        trigger_client_event(
            response,
            "award-requested",
            {"request_id": result.request.pk, "username": member.username},
        )
    if result.created and result.award is not None:
        trigger_client_event(
            response,
            "award-granted",
            {"award_id": result.award.pk, "username": member.username},
        )
    return response


def _requested_message(username: str, result: GovernedResult) -> str:
    request = result.request
    if request is None:  # a routed request always carries its row
        raise ValueError("not a request result")
    if not result.created:
        return (
            f"Already requested: this form was submitted before (request #{request.pk}, "
            f"{request.effective_state()})."
        )
    return (
        f"Sent for approval: {request.points:,} points to {username} is above "
        f"{settings.AWARD_APPROVAL_THRESHOLD:,}, so a second staff member must approve "
        f"request #{request.pk}. Nothing is granted until then."
    )


def _granted_message(username: str, points: int, score: ScoreResult | None) -> str:
    message = f"Granted {points:,} points to {username}."
    if score is None:
        return message
    message += f" Total now {score.total_score:,}"
    if score.tier_changed:
        message += f", tier {tier_for_total(score.total_score).name}"
    return message + "."


@audit_exempt
@require_POST
@staff_permission_required("awards.add_award")
def award_grant_validate(request: HtmxHttpRequest) -> HttpResponse:
    """Re-render one field of the grant form with its errors, as the staff member types.

    The field is named by the HTMX trigger (``field-<name>``). A "required" error is not
    shown for a field left empty: that one waits for the submit.
    """
    target = htmx_target(request) or ""
    name = target.removeprefix("field-")
    if not request.htmx or name not in VALIDATED_FIELDS:
        return HttpResponseBadRequest("Validates one grant form field for htmx.")
    form = AwardGrantForm(request.POST)
    form.is_valid()
    if not request.POST.get(name, "").strip() and name in form.errors:
        del form.errors[name]
    status = 422 if name in form.errors else 200
    return render(request, f"{TEMPLATE}#grant-field", {"field": form[name]}, status=status)


@require_GET
@staff_permission_required("awards.add_award")
def award_preview(request: HtmxHttpRequest) -> HttpResponse:
    """``?username=&points=`` → the member's current total, the new total and tier reached."""
    form = PreviewForm(request.GET)
    preview = None
    if form.is_valid():
        preview = grant_preview(
            member=form.cleaned_data["username"], points=form.cleaned_data["points"]
        )
    context = {
        "preview": preview,
        "preview_form": form,
        "self_grant": preview is not None and form.cleaned_data["username"] == request.user,
    }
    return render(request, f"{TEMPLATE}#grant-preview", context)


@require_GET
@staff_permission_required()
def member_search(request: HtmxHttpRequest) -> HttpResponse:
    """Members matching ``?username=`` (or ``?q=``) as a list of buttons that fill the field."""
    query = (request.GET.get("username") or request.GET.get("q") or "").strip()[:150]
    matches = members_search(query=query)
    return render(request, "staff/member_search.html", {"matches": matches, "query": query})
