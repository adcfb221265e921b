"""``/staff/awards/<id>/revoke``: take an award back, with a reason (SPEC §8)."""

from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from awards.audited import award_revoke_audited
from awards.models import Award
from awards.rules import REASON_MAX, REASON_MIN
from awards.selectors import award_get
from staff.htmx import HtmxHttpRequest
from swampclub.http import staff_permission_required

TEMPLATE = "staff/award_revoke.html"


class RevokeForm(forms.Form):
    """The revoke form's one field; the service enforces the rule, the form the shape."""

    reason = forms.CharField(
        min_length=REASON_MIN,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why the award no longer counts (kept in the ledger, shown to staff).",
    )


def revoke_form_for(award: Award, data: Mapping[str, Any] | None = None) -> RevokeForm:
    """The revoke form of one award, with element ids of its own (many share a page)."""
    return RevokeForm(data, auto_id=f"id_revoke_{award.pk}_%s")


def _member_page(username: str) -> str:
    return reverse("staff:member-detail", args=[username])


@require_http_methods(["GET", "POST"])
@staff_permission_required("awards.add_awardrevocation")
def award_revoke_view(request: HtmxHttpRequest, award_id: int) -> HttpResponse:
    """Confirm (GET) and revoke (POST, field ``reason``) one award.

    Invalid input revokes nothing and answers 422 with the error beside the field (the
    ``#revoke-form`` fragment for HTMX, the page otherwise). Success: a plain POST
    redirects to the member's staff page; an HTMX POST answers the fragment with a status
    line and fires ``award-revoked`` (detail: award id, username, new total) so other
    panels refresh themselves. Revoking an already revoked award changes nothing and says so.
    """
    award = award_get(award_id=award_id)
    if award is None:
        raise Http404("No such award.")
    revocation = getattr(award, "revocation", None)
    # The member page puts one revoke form in each history row (``#revoke-form-<id>``); a
    # fragment answering such a row keeps that id, so it replaces itself again next time.
    row_id = f"revoke-form-{award.pk}"
    in_row = bool(request.htmx) and request.htmx.target == row_id
    context = {
        "award": award,
        "revocation": revocation,
        "action": reverse("staff:award-revoke", args=[award.pk]),
        "member_page": _member_page(award.recipient.username),
        "form_id": row_id if in_row else "revoke-form",
        "in_row": in_row,
    }
    if request.method == "GET":
        form = revoke_form_for(award)
        if not in_row:
            return render(request, TEMPLATE, {**context, "form": form})
        # A history row opened its "Revoke…" disclosure: just the form, ready to type in.
        form.fields["reason"].widget.attrs["autofocus"] = True
        return render(request, f"{TEMPLATE}#revoke-form", {**context, "form": form})

    form = revoke_form_for(award, request.POST)
    if form.is_valid():
        try:
            result = award_revoke_audited(
                award=award, revoked_by=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            form.add_error("reason", error.message_dict.get("reason", error.messages))
        else:
            if not request.htmx:
                return redirect(_member_page(award.recipient.username))
            if result.created:
                total = result.score.total_score if result.score else None
                status = f"Award #{award.pk} revoked; {award.points:,} points no longer count."
            else:
                total = None
                status = f"Award #{award.pk} was already revoked; nothing changed."
            response = render(
                request,
                f"{TEMPLATE}#revoke-form",
                {**context, "revocation": result.revocation, "status": status},
            )
            if result.created:
                trigger_client_event(
                    response,
                    "award-revoked",
                    {"award_id": award.pk, "username": award.recipient.username, "total": total},
                )
            return response
    template = f"{TEMPLATE}#revoke-form" if request.htmx else TEMPLATE
    return render(request, template, {**context, "form": form}, status=422)
