"""Staff rescore pages: the rules versions, a dry run of one, and applying it as a job.

``/staff/rescore/`` lists the versions (the one in force marked) and recent jobs, and
starts a job (POST ``version``, ``kind`` = ``dry_run`` or ``apply``); ``/staff/rescore/<id>/``
shows a job's progress (polling itself while it runs) and its report. Dry runs need
``scoring.view_scoringrules``; applying needs ``scoring.change_scoringrules`` as well.
"""

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from audit.services import audit_record
from scoring.models import RescoreJob, ScoringRules
from scoring.rescore import rescore_job_create
from scoring.rules import rules_constants, rules_in_force
from scoring.tiers import tier_or_placeholder
from staff.htmx import HtmxHttpRequest, render_page_or_fragment
from swampclub.http import staff_permission_required

RECENT_JOBS = 20


class RescoreForm(forms.Form):
    """Which version to rescore with, and whether to apply it or only dry-run it."""

    version = forms.TypedChoiceField(coerce=int, choices=())
    kind = forms.ChoiceField(choices=RescoreJob.Kind.choices)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [  # type: ignore[attr-defined]  # a TypedChoiceField
            (v, f"version {v}") for v in ScoringRules.objects.values_list("version", flat=True)
        ]


def _versions() -> list[dict]:
    in_force = rules_in_force().version
    return [
        {"rules": rules, "constants": rules_constants(rules), "in_force": rules.version == in_force}
        for rules in ScoringRules.objects.order_by("version")
    ]


@require_http_methods(["GET", "POST"])
@staff_permission_required("scoring.view_scoringrules")
def rescore_view(request: HtmxHttpRequest) -> HttpResponse:
    """The versions and recent jobs; a valid POST queues a job and redirects to it."""
    form = RescoreForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        kind = form.cleaned_data["kind"]
        if kind == RescoreJob.Kind.APPLY and not request.user.has_perm(
            "scoring.change_scoringrules"
        ):
            raise PermissionDenied
        with transaction.atomic():
            job = rescore_job_create(
                version=form.cleaned_data["version"], kind=kind, requested_by=request.user
            )
            audit_record(
                action=f"rules.{kind}",
                actor=request.user,
                obj=job,
                after={"rules_version": job.rules_id, "kind": kind},
            )
        return redirect("staff:rescore-job", job_id=job.pk)
    context = {
        "form": form,
        "versions": _versions(),
        "jobs": RescoreJob.objects.select_related("requested_by")[:RECENT_JOBS],
    }
    return render(
        request, "staff/rescore.html", context, status=422 if request.method == "POST" else 200
    )


def _named(moves: list[dict]) -> list[dict]:
    return [
        {
            **m,
            "delta": m["new_total"] - m["old_total"],
            "old_tier_name": tier_or_placeholder(m["old_tier"]).name,
            "new_tier_name": tier_or_placeholder(m["new_tier"]).name,
        }
        for m in moves
    ]


@require_GET
@staff_permission_required("scoring.view_scoringrules")
def rescore_job_view(request: HtmxHttpRequest, job_id: int) -> HttpResponse:
    """A job's progress and report; ``#rescore-job`` alone while it polls for itself."""
    job = RescoreJob.objects.select_related("rules", "requested_by").filter(pk=job_id).first()
    if job is None:
        raise Http404("No such rescore job.")
    report = job.report or {}
    context = {
        "job": job,
        "report": report,
        "movers": _named(report.get("movers", [])),
        "tier_moves": _named(report.get("tier_moves", [])),
        "percent": (100 * job.members_done // job.members_total) if job.members_total else 0,
    }
    return render_page_or_fragment(
        request, "staff/rescore_job.html", context, fragments={"rescore-job"}
    )
