"""All awards: filters, pagination and a streamed CSV export of the filtered list."""

import csv
from collections.abc import Iterator

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from awards.forms import AwardFilterForm
from awards.selectors_staff import AwardFilters, award_list, award_list_page
from awards.views_staff._common import HtmxHttpRequest, render_page_or_fragment
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
        return _csv_response(filters)
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


class _Echo:
    """A file-like object whose ``write`` returns the line, for streaming ``csv.writer``."""

    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    # A text cell starting with = + - @ (or a tab/CR) runs as a formula in spreadsheet
    # programs; a leading apostrophe keeps it text (OWASP "CSV injection").
    if value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


FORMULA_STARTS = frozenset("=+-@\t\r")


def _csv_rows(filters: AwardFilters) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
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
        yield writer.writerow(
            (
                pk,
                granted_at.isoformat(),
                _cell(username),
                points,
                category,
                "yes" if public else "no",
                _cell(reason),
                _cell(note),
                _cell(granter or ""),
                _cell(granter_text),
                source,
                _cell(key),
                revoked_at.isoformat() if revoked_at else "",
                _cell(revoked_by or ""),
                _cell(revocation_reason or ""),
            )
        )


def _csv_response(filters: AwardFilters) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(_csv_rows(filters), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="awards-{stamp}.csv"'
    return response
