"""The dashboard's governance panel: pending award requests and unusual grants (flags)."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from staff.htmx import HtmxHttpRequest
from staff.selectors.flags import award_flags
from staff.selectors.requests import award_requests_pending
from swampclub.http import staff_permission_required

TEMPLATE = "staff/governance.html"


@require_GET
@staff_permission_required()
def governance_panel(request: HtmxHttpRequest) -> HttpResponse:
    """``#governance``: requests waiting for approval (with the preview of approving each)
    and the flags of unusual grants (``staff.selectors.flags``).

    Loaded by the dashboard after the page (and reloaded after grants and decisions), so the
    dashboard itself stays as cheap as before; without JavaScript it is a page of its own.
    """
    context = {"pending": award_requests_pending(limit=10), "flags": award_flags()}
    name = f"{TEMPLATE}#governance" if request.htmx else TEMPLATE
    return render(request, name, context)
