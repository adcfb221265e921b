"""Bulk grants from a CSV file: parse, dry run, confirm, grant (SPEC §8 ``/staff/awards/bulk``).

The file is ``username,points,reason[,category,award_id]``, with or without a header row.
A dry run (``bulk_dry_run``) validates every row against the database without writing an
award and, when the file is clean, stores the parsed rows in a ``BulkGrantJob`` whose token
confirms them (``bulk_job_confirm``). Granting goes through ``awards_grant_bulk`` in chunks
(``bulk_job_run``): inline for small files, as the ``awards.bulk_grant`` task for large ones.

Each row's idempotency key is its ``award_id`` or, without one, derived from a hash of the
file's parsed content and the row's position (``bulk-<hash>-<row>``), so uploading the same
file again grants nothing twice. A file with any invalid row grants nothing at all — fix it
and upload it again — which is also what makes the content-derived keys safe: a file is
either granted whole or not at all.
"""

import csv
import hashlib
import io
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.services import audit_record
from awards.budgets import BudgetExceeded, budget_exceeded_message, budget_get
from awards.models import Award, BulkGrantJob
from awards.requests import awards_grant_governed, grants_route
from awards.selectors_staff import totals_for_members, usernames_to_members
from awards.services import BulkGrantError, GrantSpec, awards_bulk_check, awards_grant_bulk
from scoring.tiers import Tier, tier_for_total

logger = logging.getLogger("swampclub.bulk")

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
# Files up to this many rows are granted inside the confirming request; larger ones by the
# ``awards.bulk_grant`` task, with progress shown by polling the job.
SYNC_MAX_ROWS = 1000
# Rows per ``awards_grant_bulk`` call: each chunk commits with its progress, so a job
# interrupted half-way resumes after the last committed chunk.
CHUNK_ROWS = 500
# A dry run can be confirmed for this long; older ones are deleted by the next upload.
DRY_RUN_TTL = timedelta(hours=24)
# A queued or running job whose row has not moved for this long is picked up again.
STALL_AFTER = timedelta(minutes=2)
ACTIVE = (BulkGrantJob.Status.QUEUED, BulkGrantJob.Status.RUNNING)
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
    # Both set by ``bulk_check``; a row without errors has the member (a User) and the points.
    member: Any = None
    points: Any = None
    key: str = ""
    errors: list[str] = field(default_factory=list)
    # "new" (will be granted), "existing" (already granted earlier), "duplicate" (same
    # award as an earlier row of this file) or "error".
    state: str = "new"
    duplicate_of: int | None = None
    warning: str = ""


@dataclass(frozen=True)
class TierImpact:
    """A member whose tier the file would change."""

    username: str
    current_total: int
    new_total: int
    current_tier: Tier
    new_tier: Tier


@dataclass
class BulkReport:
    """The result of a dry run."""

    filename: str
    sha256: str
    rows: list[BulkRow] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    tier_impacts: list[TierImpact] = field(default_factory=list)
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


def _messages(error: ValidationError) -> list[str]:
    if hasattr(error, "error_dict"):
        return [message for messages in error.message_dict.values() for message in messages]
    return list(error.messages)


def bulk_check(*, report: BulkReport, granted_by: User) -> BulkReport:
    """Check every parsed row against the database (members, rules, stored awards).

    A fixed number of queries whatever the file's size: members by username (one or two),
    the service's rule and stored-award checks (two), current totals (one).
    """
    if report.file_errors:
        return report
    members = usernames_to_members(usernames=[r.username for r in report.rows])
    specs: list[GrantSpec] = []
    spec_rows: list[BulkRow] = []
    for row in report.rows:
        if not row.username:
            row.errors.append("The username is empty.")
        else:
            row.member = members.get(row.username)
            if row.member is None:
                row.errors.append(f"No member is called “{row.username}”.")
        try:
            row.points = int(row.points_text)
        except ValueError:
            row.errors.append(f"Points “{row.points_text}” is not a whole number.")
        if row.errors:
            continue
        specs.append(
            GrantSpec(
                recipient_id=row.member.pk,
                points=row.points,
                reason=row.reason,
                idempotency_key=row.key,
                category=row.category,
                staff_note=_staff_note(report.filename, row.number),
            )
        )
        spec_rows.append(row)
    check = awards_bulk_check(grants=specs, granted_by=granted_by)
    for index, error in check.errors.items():
        spec_rows[index].errors.extend(_messages(error))
    for index in check.existing:
        spec_rows[index].state = "existing"
    first_with_key: dict[tuple[int, str], BulkRow] = {}
    first_with_payload: dict[tuple[int, int, str], BulkRow] = {}
    for row in spec_rows:
        if row.errors or row.state == "existing":
            continue
        earlier = first_with_key.setdefault((row.member.pk, row.key), row)
        if earlier is not row:
            row.state, row.duplicate_of = "duplicate", earlier.number
            continue
        payload = (row.member.pk, row.points, row.reason.strip())
        twin = first_with_payload.setdefault(payload, row)
        if twin is not row:
            row.warning = (
                f"Same member, points and reason as row {twin.number}; both will be granted. "
                "Give the rows award_id values if they are the same award."
            )
    for row in report.rows:
        if row.errors:
            row.state = "error"
    _governance_check(report, granted_by)
    report.tier_impacts = _tier_impacts(report.new_rows)
    return report


def _governance_check(report: BulkReport, granted_by: User) -> None:
    """Mark rows that will become award requests; refuse a file over the uploader's budget.

    Two queries for the routing, two for the budget (see ``awards.requests``,
    ``awards.budgets``). The budget is checked again, under its lock, when the file is
    granted.
    """
    rows = report.new_rows
    if not rows or granted_by is None:
        return
    specs = [
        GrantSpec(
            recipient_id=row.member.pk,
            points=row.points,
            reason=row.reason,
            idempotency_key=row.key,
        )
        for row in rows
    ]
    routing = grants_route(specs)
    for index in routing.requests:
        rows[index].warning = (
            f"Above {settings.AWARD_APPROVAL_THRESHOLD:,} points: becomes an award request "
            "that a second staff member must approve."
        )
    budget = budget_get(granter=granted_by)
    if not budget.allows(routing.new_points):
        report.file_errors.append(budget_exceeded_message(budget, routing.new_points))


def _staff_note(filename: str, number: int) -> str:
    return f"Bulk file “{filename or 'upload'}”, row {number}."[:2000]


def _tier_impacts(rows: Iterable[BulkRow]) -> list[TierImpact]:
    gains: dict[int, int] = defaultdict(int)
    names: dict[int, str] = {}
    for row in rows:
        gains[row.member.pk] += row.points
        names[row.member.pk] = row.member.username
    totals = totals_for_members(member_ids=gains)
    impacts = []
    for member_id, gain in gains.items():
        before, after = tier_for_total(totals[member_id]), tier_for_total(totals[member_id] + gain)
        if before.ordinal != after.ordinal:
            impacts.append(
                TierImpact(
                    names[member_id], totals[member_id], totals[member_id] + gain, before, after
                )
            )
    return sorted(impacts, key=lambda i: (-i.new_tier.ordinal, i.username))


def bulk_dry_run(*, raw: bytes, filename: str, uploaded_by: User, audit: bool = True) -> BulkReport:
    """Parse and check a file; when it can be granted, store it as a job awaiting confirmation.

    Writes no award; records the upload in the audit trail unless ``audit`` is False
    (an upload confirmed in the same request is recorded once, as its confirmation). The
    report's ``job.token`` confirms exactly the rows shown. Dry runs older than
    ``DRY_RUN_TTL`` are deleted here, so abandoned uploads do not pile up.
    """
    report = bulk_check(report=bulk_parse(raw=raw, filename=filename), granted_by=uploaded_by)
    BulkGrantJob.objects.filter(
        status=BulkGrantJob.Status.DRY_RUN, updated_at__lt=timezone.now() - DRY_RUN_TTL
    ).delete()
    if report.ok:
        rows = [
            {
                "row": row.number,
                "recipient_id": row.member.pk,
                "username": row.member.username,
                "points": row.points,
                "reason": row.reason,
                "category": row.category,
                "key": row.key,
            }
            for row in report.rows
            if row.state in ("new", "existing", "duplicate")
        ]
        report.job = BulkGrantJob.objects.create(
            token=uuid.uuid4(),
            created_by=uploaded_by,
            filename=report.filename,
            file_sha256=report.sha256,
            rows=rows,
            row_count=len(rows),
            total_points=report.total_points,
        )
    if audit:
        audit_record(
            action="bulk.upload",
            actor=uploaded_by,
            obj=report.job,
            object_type="" if report.job else "file",
            object_repr=report.filename or "upload",
            after=_report_summary(report),
        )
    return report


def _report_summary(report: BulkReport) -> dict:
    return {
        "filename": report.filename,
        "sha256": report.sha256,
        "rows": len(report.rows),
        "to_grant": len(report.new_rows),
        "points": report.total_points,
        "error_rows": len(report.error_rows),
        "file_errors": report.file_errors,
    }


def bulk_job_get(*, token: uuid.UUID, user: User) -> BulkGrantJob | None:
    """The job with this token if ``user`` uploaded it, else None."""
    return (
        BulkGrantJob.objects.select_related("created_by")
        .filter(token=token, created_by=user)
        .first()
    )


def bulk_job_confirm(*, token: uuid.UUID, user: User) -> BulkGrantJob:
    """Confirm a dry run: grant it now (small files) or queue ``awards.bulk_grant``.

    Only the uploader can confirm, once: the claim is a conditional UPDATE from ``dry_run``,
    so a double submit confirms once and the second call just returns the job. Raises
    ``ValidationError`` for an unknown or expired token.
    """
    now = timezone.now()
    claimed = BulkGrantJob.objects.filter(
        token=token,
        created_by=user,
        status=BulkGrantJob.Status.DRY_RUN,
        updated_at__gte=now - DRY_RUN_TTL,
    ).update(status=BulkGrantJob.Status.QUEUED, updated_at=now)
    job = bulk_job_get(token=token, user=user)
    if job is None or (not claimed and job.status == BulkGrantJob.Status.DRY_RUN):
        raise ValidationError(
            "This dry run has expired or does not exist; upload the file again.",
            code="bulk_token",
        )
    if not claimed:
        return job
    audit_record(
        action="bulk.confirm",
        actor=user,
        obj=job,
        object_repr=job.filename or "upload",
        after={
            "filename": job.filename,
            "sha256": job.file_sha256,
            "rows": job.row_count,
            "points": job.total_points,
        },
    )
    if job.row_count <= SYNC_MAX_ROWS:
        bulk_job_run(job_id=job.pk)
        job.refresh_from_db()
    else:
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from awards.tasks import bulk_grant_task

    # A broker outage must not fail the confirmation: the job row holds the work, and
    # ``bulk_jobs_resume`` (beat) starts it once it has waited ``STALL_AFTER``.
    try:
        bulk_grant_task.delay(job_id)
    except Exception:  # any broker error is only a delay
        logger.warning(
            "could not queue bulk job %s; the resume task will run it", job_id, exc_info=True
        )


def _specs(job: BulkGrantJob, rows: Sequence[dict]) -> list[GrantSpec]:
    return [
        GrantSpec(
            recipient_id=row["recipient_id"],
            points=row["points"],
            reason=row["reason"],
            idempotency_key=row["key"],
            category=row["category"],
            staff_note=_staff_note(job.filename, row["row"]),
        )
        for row in rows
    ]


def _row_errors_text(error: BulkGrantError, rows: Sequence[dict]) -> str:
    lines = []
    for index, row_error in list(error.row_errors.items())[:20]:
        lines.append(
            f"Row {rows[index]['row']} ({rows[index]['username']}): "
            + " ".join(_messages(row_error))
        )
    more = len(error.row_errors) - len(lines)
    if more > 0:
        lines.append(f"… and {more} more.")
    return "\n".join(lines)


def bulk_job_run(*, job_id: int) -> int:
    """Grant a confirmed job's rows in chunks; return how many awards this call created.

    Each chunk's grants and the job's progress commit together, under a lock on the job
    row, so progress is exact, two runners of one job (a redelivered task and the resume
    task) take turns instead of repeating work, and an interrupted job resumes after its
    last committed chunk; the rows' keys would make a repeated chunk grant nothing twice
    anyway. A chunk the service refuses (the database changed since the dry run: a member
    deactivated, a key used with other values) fails the job with the rows named; chunks
    already granted stay granted, and uploading the file again grants only the rest.
    """
    job = BulkGrantJob.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None or job.status not in ACTIVE:
        return 0
    now = timezone.now()
    BulkGrantJob.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=now)
    BulkGrantJob.objects.filter(pk=job.pk, status__in=ACTIVE).update(
        status=BulkGrantJob.Status.RUNNING, updated_at=now
    )
    created_total = 0
    for start in range(0, job.row_count, CHUNK_ROWS):
        rows = job.rows[start : start + CHUNK_ROWS]
        try:
            with transaction.atomic():
                locked = BulkGrantJob.objects.select_for_update().get(pk=job.pk)
                if locked.status not in ACTIVE:
                    return created_total
                if locked.processed_rows >= start + len(rows):
                    continue  # committed by an earlier (or another) run
                # Above the approval threshold a row becomes an award request; the whole
                # chunk is refused if it does not fit the uploader's budget.
                results = awards_grant_governed(
                    grants=_specs(job, rows),
                    granted_by=job.created_by,
                    source=Award.Source.BULK,
                    grant_bulk=awards_grant_bulk,
                )
                created = sum(1 for r in results if r.created and r.award is not None)
                requested = sum(1 for r in results if r.created and r.request is not None)
                BulkGrantJob.objects.filter(pk=job.pk).update(
                    processed_rows=start + len(rows),
                    granted_count=F("granted_count") + created,
                    requested_count=F("requested_count") + requested,
                    updated_at=timezone.now(),
                )
        except (BulkGrantError, BudgetExceeded) as error:
            text = (
                " ".join(error.messages)
                if isinstance(error, BudgetExceeded)
                else _row_errors_text(error, rows)
            )
            BulkGrantJob.objects.filter(pk=job.pk).update(
                status=BulkGrantJob.Status.FAILED,
                error=text,
                finished_at=timezone.now(),
                updated_at=timezone.now(),
            )
            return created_total
        created_total += created
    BulkGrantJob.objects.filter(pk=job.pk, status=BulkGrantJob.Status.RUNNING).update(
        status=BulkGrantJob.Status.DONE,
        skipped_count=F("row_count") - F("granted_count") - F("requested_count"),
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return created_total


def bulk_jobs_resume(*, now: datetime | None = None) -> int:
    """Run every confirmed job that stalled (lost task message, killed worker); return count.

    A job is claimed by moving its ``updated_at`` forward with a conditional UPDATE, so two
    resumers never pick the same stalled job at the same moment.
    """
    now = now or timezone.now()
    stalled = list(
        BulkGrantJob.objects.filter(
            status__in=ACTIVE,
            updated_at__lt=now - STALL_AFTER,
        ).values_list("pk", "updated_at")
    )
    resumed = 0
    for pk, updated_at in stalled:
        if BulkGrantJob.objects.filter(pk=pk, updated_at=updated_at).update(updated_at=now):
            bulk_job_run(job_id=pk)
            resumed += 1
    return resumed
