"""Bulk grant: upload a CSV, read the dry run, confirm; large files run as a task."""

import uuid

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from awards.bulk import MAX_BYTES, SYNC_MAX_ROWS, bulk_dry_run, bulk_job_confirm, bulk_job_get
from awards.models import BulkGrantJob
from staff.forms import BulkConfirmForm, BulkUploadForm
from staff.htmx import HtmxHttpRequest, render_page_or_fragment
from swampclub.http import staff_permission_required

TEMPLATE = "staff/bulk.html"


def _render(request: HtmxHttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    context.setdefault("form", BulkUploadForm())
    context.setdefault("sync_max_rows", SYNC_MAX_ROWS)
    name = f"{TEMPLATE}#bulk-panel" if request.htmx else TEMPLATE
    return render(request, name, context, status=status)


def _job_response(request: HtmxHttpRequest, job: BulkGrantJob) -> HttpResponse:
    if not request.htmx:
        return redirect("staff:award-bulk-job", token=job.token)
    return _render(request, {"job": job})


@require_http_methods(["GET", "POST"])
@staff_permission_required("awards.add_award")
def bulk_grant_view(request: HtmxHttpRequest) -> HttpResponse:
    """Upload (dry run), confirm by token, or upload with ``confirm=1`` to grant at once.

    A dry run writes no award; it answers the report, and a token when the file can be
    granted. Confirming grants the stored rows once (small files at once, large ones as
    the ``awards.bulk_grant`` task) and shows the job. ``confirm=1`` with a file that has
    errors grants nothing and answers 422 with the report.
    """
    if request.method == "GET":
        return _render(request, {})
    if "token" in request.POST:
        confirm = BulkConfirmForm(request.POST)
        if not confirm.is_valid():
            error = "This confirmation is not valid."
            return _render(request, {"confirm_error": error}, status=422)
        try:
            job = bulk_job_confirm(token=confirm.cleaned_data["token"], user=request.user)
        except ValidationError as error:
            return _render(request, {"confirm_error": error.messages[0]}, status=422)
        return _job_response(request, job)

    form = BulkUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(request, {"form": form}, status=422)
    upload = form.cleaned_data["file"]
    # Read one byte past the limit so an oversized file is reported, never loaded whole.
    raw = upload.read(MAX_BYTES + 1)
    report = bulk_dry_run(
        raw=raw,
        filename=upload.name or "",
        uploaded_by=request.user,
        audit=not form.cleaned_data["confirm"],
    )
    if form.cleaned_data["confirm"]:
        if not report.ok:
            return _render(request, {"report": report, "confirm_refused": True}, status=422)
        token = report.job.token  # type: ignore[union-attr]  # a report that is ok has its job
        return _job_response(request, bulk_job_confirm(token=token, user=request.user))
    return _render(request, {"report": report})


@require_GET
@staff_permission_required("awards.add_award")
def bulk_job_view(request: HtmxHttpRequest, token: uuid.UUID) -> HttpResponse:
    """A confirmed job's progress: the page, or ``#bulk-job`` while it polls for itself."""
    job = bulk_job_get(token=token, user=request.user)
    if job is None:
        raise Http404("No such bulk job.")
    return render_page_or_fragment(
        request, "staff/bulk_job.html", {"job": job}, fragments={"bulk-job"}
    )
