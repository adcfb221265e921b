"""A member's staff page: score breakdown, metrics, heatmap, award history, grant form."""

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from staff.forms import AwardGrantForm
from staff.htmx import HtmxHttpRequest, htmx_target, render_page_or_fragment
from staff.selectors.lineage import (
    LINEAGE_PER_GROUP,
    event_lineage_cached,
    rejected_events_for_member,
)
from staff.selectors.member_detail import (
    MEMBER_HISTORY_LIMIT,
    award_count_for_member,
    award_history_for_member_staff,
    member_detail,
)
from swampclub.http import staff_permission_required

TEMPLATE = "staff/member_detail.html"
FRAGMENTS = {"award-history", "member-score"}


@require_GET
@staff_permission_required("awards.view_award")
def member_detail_view(request: HtmxHttpRequest, username: str) -> HttpResponse:
    """The member's staff page, or one of its self-refreshing panels.

    ``#award-history`` and ``#member-score`` reload themselves after ``award-granted`` and
    ``award-revoked``; each reload queries only what its panel shows.
    """
    member = get_object_or_404(get_user_model(), username=username)
    panel = htmx_target(request)
    if panel not in FRAGMENTS:
        panel = None
    context: dict = {"member": member}
    if panel in (None, "member-score"):
        context["detail"] = member_detail(member=member)
    if panel in (None, "award-history"):
        context["history"] = history = award_history_for_member_staff(member=member)
        context["history_limit"] = MEMBER_HISTORY_LIMIT
        if len(history) >= MEMBER_HISTORY_LIMIT:
            context["history_total"] = award_count_for_member(member=member)
    if panel is None:
        metrics = context["detail"].metrics
        context["lineage"] = event_lineage_cached(
            member=member, counts=metrics.event_counts if metrics else {}
        )
        context["lineage_limit"] = LINEAGE_PER_GROUP
        context["rejected_events"] = rejected_events_for_member(member=member)
    if panel is None and request.user.has_perm("awards.add_award"):
        context["form"] = AwardGrantForm(initial={"username": member.username, "keep_member": True})
    return render_page_or_fragment(request, TEMPLATE, context, fragments=FRAGMENTS)
