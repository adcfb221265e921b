"""Queueing the awards app's Celery tasks from its services, by task name.

The services must not import ``awards.tasks`` (the tasks import the services: the
interface layer calls the service layer, never back), so they find the task by its pinned
name in Celery's registry (``AwardsConfig.ready()`` loads ``awards.tasks`` in every
process). A broker outage never fails the caller: the job's row holds the work, and the
beat-driven resume task picks it up.
"""

import logging

from celery import current_app

logger = logging.getLogger("swampclub.bulk")

BULK_GRANT_TASK = "awards.bulk_grant"


def bulk_job_wake(job_id: int) -> None:
    """Queue ``awards.bulk_grant`` for the job; a broker error is logged, never raised.

    ``bulk_jobs_resume`` (beat) starts a job left waiting once it has waited ``STALL_AFTER``.
    """
    try:
        current_app.tasks[BULK_GRANT_TASK].delay(job_id)
    except Exception:  # any broker error is only a delay
        logger.warning(
            "could not queue bulk job %s; the resume task will run it", job_id, exc_info=True
        )
