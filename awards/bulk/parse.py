"""Reading a bulk CSV file: rows, file-level problems and the content-derived keys.

No database access. The file is ``username,points,reason[,category,award_id]``, with or
without a header row.
"""

import csv
import hashlib
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

from awards.models import Award, BulkGrantJob
from awards.recipients import GrantPreview

if TYPE_CHECKING:
    from django.contrib.auth.models import User as AuthUser

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
COLUMNS = ("username", "points", "reason", "category", "award_id")
REQUIRED = ("username", "points", "reason")


@dataclass
class BulkRow:
    """One data row of the file and what the dry run found."""

    number: int  # 1-based among data rows (the header and blank lines do not count)
    line: int  # 1-based line in the file, for messages
    username: str
    points_text: str
    reason: str
    category: str
    award_id: str
    # Both set by ``bulk_check``; a row without errors has the member and the points.
    member: "AuthUser | None" = None
    points: int | None = None
    key: str = ""
    errors: list[str] = field(default_factory=list)
    # "new" (will be granted), "existing" (already granted earlier), "duplicate" (same
    # award as an earlier row of this file) or "error".
    state: str = "new"
    duplicate_of: int | None = None
    warning: str = ""

    def checked(self) -> tuple["AuthUser", int]:
        """The member and points of a row that passed the checks (``ValueError`` before)."""
        if self.member is None or self.points is None:
            raise ValueError(f"row {self.number} has no member or points yet")
        return self.member, self.points


@dataclass
class BulkReport:
    """The result of a dry run."""

    filename: str
    sha256: str
    rows: list[BulkRow] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    tier_impacts: list[GrantPreview] = field(default_factory=list)
    job: BulkGrantJob | None = None

    @property
    def error_rows(self) -> list[BulkRow]:
        """Rows that cannot be granted."""
        return [r for r in self.rows if r.state == "error"]

    @property
    def new_rows(self) -> list[BulkRow]:
        """Rows that would be granted now."""
        return [r for r in self.rows if r.state == "new"]

    @property
    def existing_rows(self) -> list[BulkRow]:
        """Rows already granted by an earlier upload (or the API) with the same key."""
        return [r for r in self.rows if r.state == "existing"]

    @property
    def duplicate_rows(self) -> list[BulkRow]:
        """Rows repeating an earlier row's award within the file."""
        return [r for r in self.rows if r.state == "duplicate"]

    @property
    def unknown_members(self) -> list[str]:
        """Usernames in the file that match no member, in file order."""
        seen: dict[str, None] = {}
        for row in self.rows:
            if row.username and row.member is None:
                seen.setdefault(row.username)
        return list(seen)

    @property
    def total_points(self) -> int:
        """Points the file would grant now."""
        return sum(r.points or 0 for r in self.new_rows)

    @property
    def ok(self) -> bool:
        """True when the file can be confirmed: no errors and something to grant."""
        return not self.file_errors and not self.error_rows and bool(self.new_rows)


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError(
            f"The file is not UTF-8 text (byte {error.start + 1}). Save it as UTF-8 CSV."
        ) from error
    if "\x00" in text:
        raise ValidationError("The file contains NUL characters; it does not look like CSV.")
    return text


def _records(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank record; a quoted newline stays in its cell."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = []
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((reader.line_num, [cell.strip() for cell in cells]))
    except csv.Error as error:
        message = f"The file is not valid CSV (line {reader.line_num}): {error}."
        raise ValidationError(message) from error
    return records


def bulk_parse(*, raw: bytes, filename: str = "") -> BulkReport:
    """Parse a CSV file into rows (no database access); file-level problems are reported.

    A first row whose first cell is ``username`` is a header naming the columns (any order,
    ``category`` and ``award_id`` optional); otherwise the columns are positional.
    """
    report = BulkReport(filename=filename[:255], sha256="")
    if len(raw) > MAX_BYTES:
        report.file_errors.append(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB.")
        return report
    try:
        records = _records(_decode(raw))
    except ValidationError as error:
        report.file_errors.extend(error.messages)
        return report
    columns = list(COLUMNS)
    if records and "username" in (cell.lower() for cell in records[0][1]):
        header = [cell.lower() for cell in records.pop(0)[1]]
        unknown = [name for name in header if name not in COLUMNS]
        missing = [name for name in REQUIRED if name not in header]
        if unknown or missing or len(set(header)) != len(header):
            problems = []
            if unknown:
                problems.append(f"unknown column(s) {', '.join(unknown)}")
            if missing:
                problems.append(f"missing column(s) {', '.join(missing)}")
            if len(set(header)) != len(header):
                problems.append("a column appears twice")
            report.file_errors.append(
                f"The header has {'; '.join(problems)}. Expected: {', '.join(COLUMNS)}."
            )
            return report
        columns = header
    if not records:
        report.file_errors.append("The file has no rows to grant.")
        return report
    if len(records) > MAX_ROWS:
        report.file_errors.append(f"The file has {len(records):,} rows; at most {MAX_ROWS:,}.")
        return report
    digest = hashlib.sha256()
    for number, (line, cells) in enumerate(records, start=1):
        values = dict.fromkeys(COLUMNS, "")
        errors = []
        if len(cells) > len(columns):
            errors.append(f"{len(cells)} columns; expected at most {len(columns)}.")
        values.update(zip(columns, cells, strict=False))
        digest.update("\x1f".join(cells).encode() + b"\x1e")
        report.rows.append(
            BulkRow(
                number=number,
                line=line,
                username=values["username"],
                points_text=values["points"],
                reason=values["reason"],
                category=values["category"].lower() or Award.Category.OTHER,
                award_id=values["award_id"],
                errors=errors,
            )
        )
    report.sha256 = digest.hexdigest()
    for row in report.rows:
        row.key = row.award_id or f"bulk-{report.sha256[:24]}-{row.number}"
    return report


def error_messages(error: ValidationError) -> list[str]:
    """The plain messages of ``error``, field names dropped."""
    if hasattr(error, "error_dict"):
        return [message for messages in error.message_dict.values() for message in messages]
    return list(error.messages)


def row_staff_note(filename: str, number: int) -> str:
    """The staff note of an award granted from row ``number`` of a bulk file."""
    return f"Bulk file “{filename or 'upload'}”, row {number}."[:2000]
