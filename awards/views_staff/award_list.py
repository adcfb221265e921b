"""All awards: filters, pagination and a streamed CSV export of the filtered list."""

import csv
from collections.abc import Iterator

from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from awards.forms import AwardFilterForm
from awards.selectors_staff import AwardFilters, award_list
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
def award_list_view(request: HtmxHttpRequest) -> HttpResponse:
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
        paginator = Paginator(award_list(filters=filters), PAGE_SIZE)
        page = paginator.get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "filtered": any(request.GET.get(f) for f in form.fields)}
    status = 200 if valid else 422
    return render_page_or_fragment(
        request, TEMPLATE, context, fragments={"award-results"}, status=status
    )


class _Echo:
    """A file-like object whose ``write`` returns the line, for streaming ``csv.writer``."""

    def write(self, value: str) -> str:
        return value


def _cell(value: object) -> object:
    # A text cell starting with = + - @ (or a tab/CR) runs as a formula in spreadsheet
    # programs; a leading apostrophe keeps it text (OWASP "CSV injection").
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_rows(filters: AwardFilters) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    # ``iterator`` streams from a server-side cursor in chunks, so a 100,000-row export
    # never holds the whole list in memory.
    for award in award_list(filters=filters).iterator(chunk_size=2000):
        revocation = getattr(award, "revocation", None)
        row = [
            award.pk,
            award.granted_at.isoformat(),
            award.recipient.username,
            award.points,
            award.category,
            "yes" if award.public else "no",
            award.reason,
            award.staff_note,
            award.granted_by.username if award.granted_by else "",
            award.granted_by_text,
            award.source,
            award.idempotency_key,
            revocation.revoked_at.isoformat() if revocation else "",
            revocation.revoked_by.username if revocation and revocation.revoked_by else "",
            revocation.reason if revocation else "",
        ]
        yield writer.writerow([_cell(value) for value in row])


def _csv_response(filters: AwardFilters) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(_csv_rows(filters), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="awards-{stamp}.csv"'
    return response
