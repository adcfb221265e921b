"""Granter budgets: at most ``AWARD_GRANTER_BUDGET`` points per granter per rolling window.

What counts against a granter's budget in the last ``AWARD_GRANTER_BUDGET_DAYS`` days:

- every award they granted that was *written* in the window (``created_at``, not the
  backdatable ``granted_at``), revoked or not — revoking does not give budget back, or a
  grant/revoke cycle would launder points;
- their award requests still pending (approved ones are awards by then; rejected and
  expired ones free their points);
- their ``award`` events accepted at ingest and still waiting in the queue (at most the
  approval threshold each: bigger ones are pending requests already).

The three sums are one SQL statement, so on PostgreSQL they come from one snapshot: the
consumer turning a queued event into an award commits both changes at once, and the
statement sees the event either queued or granted, never neither.

Concurrency: every path that spends budget (form, bulk, award event at ingest) first locks
the granter's ``GranterBudget`` row with ``SELECT ... FOR UPDATE`` (``budget_lock``), then
reads the usage, then writes, then commits. A second grant by the same granter waits for
the lock and then (READ COMMITTED: each statement sees what committed before it) counts the
first one's points. On SQLite every write transaction already holds the database lock.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from audit.services import audit_record
from awards.models import Award, AwardRequest, GranterBudget
from scoring.models import PendingEvent, TelemetryEvent
from swampclub.dialect import json_number_sql

if TYPE_CHECKING:
    from django.contrib.auth.models import User

AWARD_EVENT = "award"


class BudgetExceeded(ValidationError):
    """A grant would take a granter over their budget; nothing was written.

    Keyed by ``points`` so forms show it beside the points field. ``remaining`` is what
    the granter may still grant in the window.
    """

    def __init__(self, message: str, *, remaining: int, limit: int) -> None:
        super().__init__({"points": [message]}, code="over_budget")
        self.remaining = remaining
        self.limit = limit


@dataclass(frozen=True)
class Budget:
    """A granter's budget now: ``limit`` None means unlimited (an exempt superuser)."""

    limit: int | None
    used: int

    @property
    def remaining(self) -> int | None:
        """Points still grantable in the window (never negative); None when unlimited."""
        return None if self.limit is None else max(self.limit - self.used, 0)

    def allows(self, points: int) -> bool:
        """True when ``points`` more fit in the budget."""
        return self.limit is None or self.used + points <= self.limit


def budget_window_start(now: datetime | None = None) -> datetime:
    """The start of the rolling window that ends ``now``."""
    return (now or timezone.now()) - timedelta(days=settings.AWARD_GRANTER_BUDGET_DAYS)


def _exempt(granter: "User") -> bool:
    return bool(granter.is_superuser and settings.AWARD_BUDGET_EXEMPT_SUPERUSERS)


def budget_limit(granter: "User") -> int | None:
    """The granter's limit: their override, else ``AWARD_GRANTER_BUDGET``; None if exempt."""
    if _exempt(granter):
        return None
    override = (
        GranterBudget.objects.filter(granter=granter).values_list("points", flat=True).first()
    )
    return settings.AWARD_GRANTER_BUDGET if override is None else override


def budget_used(*, granter_id: int, now: datetime | None = None) -> int:
    """Points counted against the granter in the window (see the module docstring).

    One statement: awards written, pending requests, queued award events.
    """
    now = now or timezone.now()
    since = budget_window_start(now)
    award_meta, request_meta, event_meta = Award._meta, AwardRequest._meta, TelemetryEvent._meta
    queue = connection.ops.quote_name(PendingEvent._meta.db_table)
    qn = connection.ops.quote_name
    points_of_event = json_number_sql("properties", "points")
    adapt = connection.ops.adapt_datetimefield_value
    sql = (
        # Identifiers come from the models and are quoted; every value is a parameter.
        "SELECT "  # noqa: S608
        f"(SELECT COALESCE(SUM(points), 0) FROM {qn(award_meta.db_table)} "
        "  WHERE granted_by_id = %s AND created_at >= %s) "
        f"+ (SELECT COALESCE(SUM(points), 0) FROM {qn(request_meta.db_table)} "
        "  WHERE requested_by_id = %s AND state = %s AND expires_at > %s AND created_at >= %s) "
        f"+ (SELECT COALESCE(SUM({points_of_event}), 0) FROM {qn(event_meta.db_table)} "
        "  WHERE member_id = %s AND event = %s AND received_at >= %s "
        f"  AND id IN (SELECT event_id FROM {queue})"
        f"  AND {points_of_event} <= %s)"
    )
    params = [
        granter_id,
        adapt(since),
        granter_id,
        AwardRequest.State.PENDING,
        adapt(now),
        adapt(since),
        granter_id,
        AWARD_EVENT,
        adapt(since),
        settings.AWARD_APPROVAL_THRESHOLD,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def budget_get(*, granter: "User", now: datetime | None = None) -> Budget:
    """The granter's budget and usage now (reads only; two queries, one when exempt)."""
    limit = budget_limit(granter)
    if limit is None:
        return Budget(limit=None, used=0)
    return Budget(limit=limit, used=budget_used(granter_id=granter.pk, now=now))


def budget_lock(*, granter: "User") -> None:
    """Lock the granter's budget row until the current transaction ends (creating it).

    Must run inside a transaction. Everything that spends budget calls this first, so one
    granter's grants are checked and written one after the other.
    """
    GranterBudget.objects.bulk_create([GranterBudget(granter=granter)], ignore_conflicts=True)
    list(GranterBudget.objects.select_for_update().filter(granter=granter).values_list("pk"))


def budget_check(*, granter: "User", points: int, now: datetime | None = None) -> Budget:
    """Raise ``BudgetExceeded`` unless ``points`` more fit in the granter's budget.

    Call it after ``budget_lock`` in the transaction that then writes the grant.
    """
    budget = budget_get(granter=granter, now=now)
    if points and not budget.allows(points):
        raise BudgetExceeded(
            budget_exceeded_message(budget, points),
            remaining=budget.remaining or 0,
            limit=budget.limit or 0,
        )
    return budget


def budget_exceeded_message(budget: Budget, points: int) -> str:
    """The refusal, naming what is left of the budget."""
    return (
        f"Over your grant budget: {points:,} points asked, {budget.remaining:,} of "
        f"{budget.limit:,} points remain in the last {settings.AWARD_GRANTER_BUDGET_DAYS} days."
    )


def budget_override_set(*, granter: "User", points: int | None, by: "User") -> GranterBudget:
    """Set (or with None clear) a granter's own budget; only a superuser may.

    Raises ``PermissionDenied`` for anyone else.
    """
    if not by.is_superuser:
        raise PermissionDenied("Only a superuser can change a granter's budget.")
    budget_lock(granter=granter)
    row = GranterBudget.objects.get(granter=granter)
    before = {"points": row.points}
    row.points = points
    row.updated_by = by
    row.save(update_fields=["points", "updated_by", "updated_at"])
    audit_record(
        action="budget.set",
        actor=by,
        obj=row,
        member=granter,
        before=before,
        after={"points": points},
        object_repr=f"budget of {granter.username}",
    )
    return row


@dataclass(frozen=True)
class GranterBudgetRow:
    """One staff member's budget for the budgets page."""

    granter: "User"
    override: int | None
    budget: Budget


def budgets_overview(*, limit: int = 200) -> list[GranterBudgetRow]:
    """Every staff member's budget, limit and use (five queries, whatever the count).

    Queued award events are left out here (they are counted, under the lock, when a grant
    is checked); the page shows what was granted and what waits for approval.
    """
    from django.contrib.auth import get_user_model
    from django.db.models import Sum

    now = timezone.now()
    since = budget_window_start(now)
    staff = list(get_user_model().objects.filter(is_staff=True).order_by("username")[:limit])
    ids = [user.pk for user in staff]
    overrides = dict(
        GranterBudget.objects.filter(granter_id__in=ids).values_list("granter_id", "points")
    )
    granted = dict(
        Award.objects.filter(granted_by_id__in=ids, created_at__gte=since)
        .values_list("granted_by_id")
        .annotate(total=Sum("points"))
        .values_list("granted_by_id", "total")
    )
    pending = dict(
        AwardRequest.objects.filter(
            requested_by_id__in=ids,
            state=AwardRequest.State.PENDING,
            expires_at__gt=now,
            created_at__gte=since,
        )
        .values_list("requested_by_id")
        .annotate(total=Sum("points"))
        .values_list("requested_by_id", "total")
    )
    rows = []
    for user in staff:
        override = overrides.get(user.pk)
        if _exempt(user):
            limit_points = None
        else:
            limit_points = settings.AWARD_GRANTER_BUDGET if override is None else override
        used = (granted.get(user.pk) or 0) + (pending.get(user.pk) or 0)
        rows.append(
            GranterBudgetRow(granter=user, override=override, budget=Budget(limit_points, used))
        )
    return rows
