"""All awards: filters, pagination and a streamed CSV export of the filtered list."""

from collections.abc import Iterator

from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from staff.csv_export import csv_cell, csv_download
from staff.forms import AwardFilterForm
from staff.htmx import HtmxHttpRequest, render_page_or_fragment
from staff.selectors.award_list import AwardFilters, award_list, award_list_page
from swampclub.http import staff_permission_required

TEMPLATE = "staff/award_list.html"
PAGE_SIZE = 50
CSV_COLUMNS = [
    "id",
    "granted_at",
    "username",
    "points",
    "category",
    "public",
    "reason",
    "staff_note",
    "granted_by",
    "granted_by_text",
    "source",
    "idempotency_key",
    "revoked_at",
    "revoked_by",
    "revocation_reason",
]


@require_GET
@staff_permission_required("awards.view_award")
def award_list_view(request: HtmxHttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered, paginated list (``#award-results`` for HTMX) or ``?format=csv``.

    Invalid filters show their errors beside the fields and list nothing rather than
    everything. The CSV export streams every matching row in the list's order.
    """
    form = AwardFilterForm(request.GET)
    valid = form.is_valid()
    filters = AwardFilters(**form.cleaned_data) if valid else None
    if request.GET.get("format") == "csv" and filters is not None:
        return csv_download(name="awards", header=CSV_COLUMNS, rows=_csv_rows(filters))
    page = None
    if filters is not None:
        page = award_list_page(
            filters=filters,
            before=request.GET.get("before", ""),
            after=request.GET.get("after", ""),
            size=PAGE_SIZE,
        )
    context = {"form": form, "page": page, "filtered": any(request.GET.get(f) for f in form.fields)}
    status = 200 if valid else 422
    return render_page_or_fragment(
        request, TEMPLATE, context, fragments={"award-results"}, status=status
    )


def _csv_rows(filters: AwardFilters) -> Iterator[tuple]:
    rows = award_list(filters=filters).values_list(
        "id",
        "granted_at",
        "recipient__username",
        "points",
        "category",
        "public",
        "reason",
        "staff_note",
        "granted_by__username",
        "granted_by_text",
        "source",
        "idempotency_key",
        "revocation__revoked_at",
        "revocation__revoked_by__username",
        "revocation__reason",
    )
    # Plain tuples from a server-side cursor, in chunks: a 100,000-row export never holds
    # the list in memory and builds no model instances.
    for row in rows.iterator(chunk_size=5000):
        (
            pk,
            granted_at,
            username,
            points,
            category,
            public,
            reason,
            note,
            granter,
            granter_text,
            source,
            key,
            revoked_at,
            revoked_by,
            revocation_reason,
        ) = row
        yield (
            pk,
            granted_at.isoformat(),
            csv_cell(username),
            points,
            category,
            "yes" if public else "no",
            csv_cell(reason),
            csv_cell(note),
            csv_cell(granter or ""),
            csv_cell(granter_text),
            source,
            csv_cell(key),
            revoked_at.isoformat() if revoked_at else "",
            csv_cell(revoked_by or ""),
            csv_cell(revocation_reason or ""),
        )
