"""The staff dashboard: pipeline health, recent awards and tier changes."""

from django.http import HttpResponse
from django.views.decorators.http import require_GET

from staff.htmx import HtmxHttpRequest, htmx_target, render_page_or_fragment
from staff.selectors.dashboard import (
    awards_recent,
    clients_summary_cached,
    pipeline_health,
    tier_changes_recent,
)
from swampclub.http import staff_permission_required

TEMPLATE = "staff/dashboard.html"
PANELS = {"health", "activity", "clients"}


@require_GET
@staff_permission_required()
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    """The whole dashboard, or the panel (``#health`` / ``#activity`` / ``#clients``) that
    polled for itself.

    Each panel reloads itself on an interval; only the panel asked for is queried.
    """
    panel = htmx_target(request)
    if panel not in PANELS:
        panel = None
    context: dict = {}
    if panel in (None, "health"):
        context["health"] = pipeline_health()
    if panel in (None, "activity"):
        context["recent_awards"] = awards_recent(limit=10)
        context["tier_changes"] = tier_changes_recent(limit=10)
    if panel in (None, "clients"):
        context["clients"] = clients_summary_cached()
    return render_page_or_fragment(request, TEMPLATE, context, fragments=PANELS)
