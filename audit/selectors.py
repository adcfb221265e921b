"""Reading the audit trail: filters and keyset pages, newest first."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditEntry

# A cursor is an entry id; ids only grow (the table is append-only), so "older than id"
# is a stable keyset however many entries arrive meanwhile.
MAX_CURSOR = 2**63 - 1


@dataclass(frozen=True)
class AuditFilters:
    """The audit list's filters; empty values do not filter."""

    actor: str = ""
    action: str = ""
    member: str = ""
    object_type: str = ""
    object_id: str = ""
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class AuditPage:
    """One page of entries and the cursor of the next (older) page, if any."""

    entries: list[AuditEntry]
    older: int | None


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def audit_entries(*, filters: AuditFilters) -> QuerySet[AuditEntry]:
    """Entries matching ``filters``, newest first (by id: the order they were written)."""
    entries = AuditEntry.objects.order_by("-id")
    if filters.actor:
        entries = entries.filter(actor_username=filters.actor)
    if filters.action:
        entries = entries.filter(action=filters.action)
    if filters.member:
        entries = entries.filter(member_username=filters.member)
    if filters.object_type:
        entries = entries.filter(object_type=filters.object_type)
    if filters.object_id:
        entries = entries.filter(object_id=filters.object_id)
    if filters.date_from:
        entries = entries.filter(at__gte=_day_start(filters.date_from))
    if filters.date_to:
        entries = entries.filter(at__lt=_day_start(filters.date_to + timedelta(days=1)))
    return entries


def audit_page(*, filters: AuditFilters, before: int | None = None, size: int = 50) -> AuditPage:
    """Entries older than the ``before`` id (the first page without it), ``size`` at most.

    One query: the page plus one row to know whether an older page exists.
    """
    entries = audit_entries(filters=filters)
    if before is not None:
        entries = entries.filter(id__lt=before)
    rows = list(entries[: size + 1])
    older = rows[size - 1].pk if len(rows) > size else None
    return AuditPage(entries=rows[:size], older=older)


def audit_actions() -> list[str]:
    """The actions recorded so far, for the filter's choices (one query)."""
    return list(AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct())


def audit_rows_for_export(*, filters: AuditFilters) -> Iterator[AuditEntry]:
    """Every matching entry, streamed from a server-side cursor in chunks."""
    return audit_entries(filters=filters).iterator(chunk_size=2000)
