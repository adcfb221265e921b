"""The audit trail of staff writes: filters, keyset pages and a streamed CSV export."""

import csv
import json
from collections.abc import Iterator
from typing import Any

from django import forms
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit.selectors import (
    MAX_CURSOR,
    AuditFilters,
    audit_actions,
    audit_page,
    audit_rows_for_export,
)
from awards.views_staff._common import HtmxHttpRequest, render_page_or_fragment
from awards.views_staff.award_list import _cell
from swampclub.http import json_error, staff_permission_required

TEMPLATE = "staff/audit.html"
PAGE_SIZE = 50
CSV_COLUMNS = [
    "id",
    "at",
    "actor",
    "action",
    "object",
    "member",
    "ip",
    "user_agent",
    "path",
    "before",
    "after",
]


class AuditFilterForm(forms.Form):
    """Filters of the audit list; every field is optional."""

    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=50)
    member = forms.CharField(required=False, max_length=150)
    object_type = forms.CharField(required=False, max_length=50, widget=forms.HiddenInput)
    object_id = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        """A range must not end before it starts."""
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date is before the start date.")
        return data


def _cursor(raw: str) -> int | None:
    """The ``before`` cursor; ValueError for anything but an id in range."""
    if not raw:
        return None
    value = int(raw)
    if not 1 <= value <= MAX_CURSOR:
        raise ValueError(raw)
    return value


@require_GET
@staff_permission_required("audit.view_auditentry")
def audit_view(request: HtmxHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The audit list (``#audit-results`` for HTMX), or ``?format=csv`` of every match.

    Filters: actor, action, member (usernames as recorded), date range. Pages by keyset
    (``?before=<id>``); a cursor that is not an id in range is a 400.
    """
    form = AuditFilterForm(request.GET)
    valid = form.is_valid()
    filters = AuditFilters(**form.cleaned_data) if valid else None
    try:
        before = _cursor(request.GET.get("before", ""))
    except ValueError:
        return json_error(400, "invalid_cursor", field="before", message="must be an entry id")
    if request.GET.get("format") == "csv" and filters is not None:
        return _csv_response(filters)
    page = audit_page(filters=filters, before=before, size=PAGE_SIZE) if filters else None
    context = {"form": form, "page": page, "actions": audit_actions()}
    return render_page_or_fragment(
        request, TEMPLATE, context, fragments={"audit-results"}, status=200 if valid else 422
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, default=str)


def _csv_rows(filters: AuditFilters) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in audit_rows_for_export(filters=filters):
        yield writer.writerow(
            [
                entry.pk,
                entry.at.isoformat(),
                _cell(entry.actor_username),
                entry.action,
                _cell(entry.object_label),
                _cell(entry.member_username),
                entry.ip or "",
                _cell(entry.user_agent),
                _cell(entry.path),
                _cell(_json(entry.before)),
                _cell(_json(entry.after)),
            ]
        )


def _csv_response(filters: AuditFilters) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(_csv_rows(filters), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
