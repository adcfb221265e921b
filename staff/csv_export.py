"""Streamed CSV downloads of the staff lists (the award list and the audit trail)."""

import csv
from collections.abc import Iterable, Iterator, Sequence

from django.http import StreamingHttpResponse
from django.utils import timezone

# A text cell starting with one of these runs as a formula in spreadsheet programs.
FORMULA_STARTS = frozenset("=+-@\t\r")


def csv_cell(value: str) -> str:
    """``value`` safe to open in a spreadsheet: a leading apostrophe keeps a cell that would
    start a formula as text (OWASP "CSV injection")."""
    if value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


class _Echo:
    """A file-like object whose ``write`` returns the line, for streaming ``csv.writer``."""

    def write(self, value: str) -> str:
        return value


def _lines(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


def csv_download(
    *, name: str, header: Sequence[str], rows: Iterable[Sequence]
) -> StreamingHttpResponse:
    """A streamed CSV attachment ``<name>-<YYYYmmdd-HHMM>.csv`` of ``header`` then ``rows``;
    rows are written as they come, so a large export is never held in memory."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
