"""Confirmed bulk files: the job's confirmation, its chunked grant and the stall resume."""

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.services import audit_record
from awards.budgets import BudgetExceeded
from awards.bulk.dry_run import DRY_RUN_TTL
from awards.bulk.parse import error_messages, row_staff_note
from awards.models import Award, BulkGrantJob
from awards.requests import awards_grant_governed
from awards.services import BulkGrantError, GrantSpec, awards_grant_bulk
from awards.wakeups import bulk_job_wake

logger = logging.getLogger("swampclub.bulk")

# Files up to this many rows are granted inside the confirming request; larger ones by the
# ``awards.bulk_grant`` task, with progress shown by polling the job.
SYNC_MAX_ROWS = 1000
# Rows per ``awards_grant_bulk`` call: each chunk commits with its progress, so a job
# interrupted half-way resumes after the last committed chunk.
CHUNK_ROWS = 500
# A queued or running job whose row has not moved for this long is picked up again.
STALL_AFTER = timedelta(minutes=2)
ACTIVE = (BulkGrantJob.Status.QUEUED, BulkGrantJob.Status.RUNNING)


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
        transaction.on_commit(lambda: bulk_job_wake(job.pk))
    return job


def _specs(job: BulkGrantJob, rows: Sequence[dict]) -> list[GrantSpec]:
    return [
        GrantSpec(
            recipient_id=row["recipient_id"],
            points=row["points"],
            reason=row["reason"],
            idempotency_key=row["key"],
            category=row["category"],
            staff_note=row_staff_note(job.filename, row["row"]),
        )
        for row in rows
    ]


def _row_errors_text(error: BulkGrantError, rows: Sequence[dict]) -> str:
    lines = []
    for index, row_error in list(error.row_errors.items())[:20]:
        lines.append(
            f"Row {rows[index]['row']} ({rows[index]['username']}): "
            + " ".join(error_messages(row_error))
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
