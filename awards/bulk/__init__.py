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

from awards.bulk.dry_run import DRY_RUN_TTL, bulk_check, bulk_dry_run
from awards.bulk.jobs import (
    CHUNK_ROWS,
    STALL_AFTER,
    SYNC_MAX_ROWS,
    bulk_job_confirm,
    bulk_job_get,
    bulk_job_run,
    bulk_jobs_resume,
)
from awards.bulk.parse import MAX_BYTES, MAX_ROWS, BulkReport, BulkRow, bulk_parse

# The package's interface: ``parse`` reads a file, ``dry_run`` checks it, ``jobs`` grants it.
__all__ = [
    "CHUNK_ROWS",
    "DRY_RUN_TTL",
    "MAX_BYTES",
    "MAX_ROWS",
    "STALL_AFTER",
    "SYNC_MAX_ROWS",
    "BulkReport",
    "BulkRow",
    "bulk_check",
    "bulk_dry_run",
    "bulk_job_confirm",
    "bulk_job_get",
    "bulk_job_run",
    "bulk_jobs_resume",
    "bulk_parse",
]
