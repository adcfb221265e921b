"""The audit trail of staff writes: filters, keyset pages and a streamed CSV export."""

import json
from collections.abc import Iterator

from django.http import HttpResponse
from django.views.decorators.http import require_GET

from audit.selectors import (
    MAX_CURSOR,
    AuditFilters,
    audit_actions,
    audit_page,
    audit_rows_for_export,
)
from staff.csv_export import csv_cell, csv_download
from staff.forms import AuditFilterForm
from staff.htmx import HtmxHttpRequest, render_page_or_fragment
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
def audit_view(request: HtmxHttpRequest) -> HttpResponse:
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
        return csv_download(name="audit", header=CSV_COLUMNS, rows=_csv_rows(filters))
    page = audit_page(filters=filters, before=before, size=PAGE_SIZE) if filters else None
    context = {"form": form, "page": page, "actions": audit_actions()}
    return render_page_or_fragment(
        request, TEMPLATE, context, fragments={"audit-results"}, status=200 if valid else 422
    )


def _json(value) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, default=str)


def _csv_rows(filters: AuditFilters) -> Iterator[list]:
    for entry in audit_rows_for_export(filters=filters):
        yield [
            entry.pk,
            entry.at.isoformat(),
            csv_cell(entry.actor_username),
            entry.action,
            csv_cell(entry.object_label),
            csv_cell(entry.member_username),
            entry.ip or "",
            csv_cell(entry.user_agent),
            csv_cell(entry.path),
            csv_cell(_json(entry.before)),
            csv_cell(_json(entry.after)),
        ]
