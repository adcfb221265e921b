"""Thin Celery tasks of the awards app: each takes JSON primitives and calls one service."""

from celery import shared_task

from awards.bulk import bulk_job_run, bulk_jobs_resume
from awards.request_decisions import award_requests_expire
from awards.wakeups import BULK_GRANT_TASK


@shared_task(name=BULK_GRANT_TASK, acks_late=True)
def bulk_grant_task(job_id: int) -> int:
    """Grant a confirmed bulk file (see ``awards.bulk.bulk_job_run``); returns awards created.

    Safe to run twice: the job resumes after its last committed chunk under a row lock, and
    every row's idempotency key makes a repeated grant a no-op.
    """
    return bulk_job_run(job_id=job_id)


@shared_task(name="awards.bulk_jobs_resume", acks_late=True)
def bulk_jobs_resume_task() -> int:
    """Restart confirmed bulk jobs that stalled (see ``awards.bulk.bulk_jobs_resume``)."""
    return bulk_jobs_resume()


@shared_task(name="awards.award_requests_expire", acks_late=True)
def award_requests_expire_task() -> int:
    """Mark overdue award requests expired (``awards.request_decisions``)."""
    return award_requests_expire()
