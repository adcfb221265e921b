"""The dry run of a bulk file: every row checked against the database, nothing granted.

A clean file is stored as a ``BulkGrantJob`` awaiting confirmation (``awards.bulk.jobs``).
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from audit.services import audit_record
from awards.budgets import budget_exceeded_message, budget_get
from awards.bulk.parse import (
    BulkReport,
    BulkRow,
    bulk_parse,
    error_messages,
    row_staff_note,
)
from awards.models import BulkGrantJob
from awards.recipients import GrantPreview, totals_for_members, usernames_to_members
from awards.requests import grants_route
from awards.services import GrantSpec, awards_bulk_check
from scoring.tiers import tier_for_total

if TYPE_CHECKING:
    from django.contrib.auth.models import User as AuthUser

# A dry run can be confirmed for this long; older ones are deleted by the next upload.
DRY_RUN_TTL = timedelta(hours=24)


def bulk_check(*, report: BulkReport, granted_by: "AuthUser | None") -> BulkReport:
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
        member, points = row.checked()
        specs.append(
            GrantSpec(
                recipient_id=member.pk,
                points=points,
                reason=row.reason,
                idempotency_key=row.key,
                category=row.category,
                staff_note=row_staff_note(report.filename, row.number),
            )
        )
        spec_rows.append(row)
    check = awards_bulk_check(grants=specs, granted_by=granted_by)
    for index, error in check.errors.items():
        spec_rows[index].errors.extend(error_messages(error))
    for index in check.existing:
        spec_rows[index].state = "existing"
    first_with_key: dict[tuple[int, str], BulkRow] = {}
    first_with_payload: dict[tuple[int, int, str], BulkRow] = {}
    for row in spec_rows:
        if row.errors or row.state == "existing":
            continue
        member, points = row.checked()
        earlier = first_with_key.setdefault((member.pk, row.key), row)
        if earlier is not row:
            row.state, row.duplicate_of = "duplicate", earlier.number
            continue
        payload = (member.pk, points, row.reason.strip())
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


def _governance_check(report: BulkReport, granted_by: "AuthUser | None") -> None:
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
            recipient_id=member.pk,
            points=points,
            reason=row.reason,
            idempotency_key=row.key,
        )
        for row in rows
        for member, points in [row.checked()]
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


def _tier_impacts(rows: Iterable[BulkRow]) -> list[GrantPreview]:
    gains: dict[int, int] = defaultdict(int)
    names: dict[int, str] = {}
    for row in rows:
        member, points = row.checked()
        gains[member.pk] += points
        names[member.pk] = member.username
    totals = totals_for_members(member_ids=gains)
    impacts = []
    for member_id, gain in gains.items():
        before, after = tier_for_total(totals[member_id]), tier_for_total(totals[member_id] + gain)
        if before.ordinal != after.ordinal:
            impacts.append(
                GrantPreview(
                    names[member_id], totals[member_id], totals[member_id] + gain, before, after
                )
            )
    return sorted(impacts, key=lambda i: (-i.new_tier.ordinal, i.username))


def bulk_dry_run(
    *, raw: bytes, filename: str, uploaded_by: "AuthUser", audit: bool = True
) -> BulkReport:
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
                "recipient_id": member.pk,
                "username": member.username,
                "points": points,
                "reason": row.reason,
                "category": row.category,
                "key": row.key,
            }
            for row in report.rows
            if row.state in ("new", "existing", "duplicate")
            for member, points in [row.checked()]
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


def _report_summary(report: BulkReport) -> dict[str, Any]:
    return {
        "filename": report.filename,
        "sha256": report.sha256,
        "rows": len(report.rows),
        "to_grant": len(report.new_rows),
        "points": report.total_points,
        "error_rows": len(report.error_rows),
        "file_errors": report.file_errors,
    }
