"""Four-eyes approval: grants above ``AWARD_APPROVAL_THRESHOLD`` become award requests.

A grant of more than the threshold — from the staff form, a bulk row or an ``award`` event —
is stored as an ``AwardRequest`` carrying the whole award (recipient, points, reason, key…)
and grants nothing. A staff member with ``awards.approve_award`` who is neither the requester
nor the recipient approves it (the award is then granted through ``award_grant`` with the
request's idempotency key, the requester as granter of record) or rejects it with a reason.
A request nobody decides within ``AWARD_REQUEST_TTL_DAYS`` expires and can no longer be
approved.

Guarantees:

- **One request per (recipient, key)**, like awards: the insert goes through the
  UNIQUE (recipient, idempotency_key) constraint, so a replayed event or a double submit
  finds the request already there (a different payload under the same key is a conflict).
- **Granted exactly once.** Approval locks the request row (``SELECT ... FOR UPDATE``):
  two approvers racing are served one after the other and the second finds it approved;
  and the award's own key would make a second grant a no-op anyway.
- **Budgets** (``awards.budgets``) are checked, under the granter's budget lock, when the
  grant or request is made; a pending request holds its points against the requester's
  budget until it is decided.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Unpack

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from awards.audit_snapshots import audit_created
from awards.budgets import budget_check, budget_lock
from awards.grant_specs import StaffGrantFields, conflict_message, same_payload, validate_specs
from awards.models import Award, AwardRequest
from awards.services import (
    BulkGrantError,
    GrantResult,
    GrantSpec,
    award_grant_spec,
    awards_grant_bulk,
)
from scoring.scores import ScoreResult

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class RequestConflict(ValidationError):
    """The idempotency key already names a request for this member with other points/reason."""

    def __init__(self, message: str, *, existing: AwardRequest) -> None:
        super().__init__({"idempotency_key": [message]}, code="request_conflict")
        self.existing = existing


class GovernedResult(NamedTuple):
    """A grant's outcome under governance: an award (granted now or before) or a request.

    ``created`` is True for the call that inserted the award or the request; ``score`` is
    the recipient's refresh when an award was created; ``error`` is set for a refused row
    (``skip_invalid``).
    """

    award: Award | None = None
    request: AwardRequest | None = None
    created: bool = False
    score: ScoreResult | None = None
    error: ValidationError | None = None


def approval_needed(points: int) -> bool:
    """True when a grant of ``points`` needs a second staff member's approval."""
    return points > settings.AWARD_APPROVAL_THRESHOLD


def stored_by_key(
    specs: Sequence[GrantSpec], model: type[Award] | type[AwardRequest]
) -> dict[tuple[int, str], Any]:
    """Stored rows of ``model`` (Award or AwardRequest) for the specs' (recipient, key)."""
    wanted = {(s.recipient_id, s.idempotency_key) for s in specs}
    if not wanted:
        return {}
    rows = model.objects.filter(
        recipient_id__in={r for r, _ in wanted}, idempotency_key__in={k for _, k in wanted}
    )
    return {
        (row.recipient_id, row.idempotency_key): row
        for row in rows
        if (row.recipient_id, row.idempotency_key) in wanted
    }


class Routing(NamedTuple):
    """Where each row of a grant goes, by index, and the points that would be new."""

    grants: list[int]
    requests: list[int]
    new_points: int


def grants_route(specs: Sequence[GrantSpec], *, count_new: bool = True) -> Routing:
    """Split rows into grants and requests; count the points that would be new.

    A row whose key is already an award stays a grant (it resolves to that award); a row
    whose key is already a request stays a request (it resolves to it); otherwise a row
    above the threshold is a request. Points are new once per (recipient, key) not yet
    stored. Two queries — none when ``count_new`` is False and no row is above the
    threshold (the consumer's usual case: everything is a grant).
    """
    if not count_new and not any(approval_needed(spec.points) for spec in specs):
        return Routing(list(range(len(specs))), [], 0)
    awards = stored_by_key(specs, Award)
    requests = stored_by_key(specs, AwardRequest)
    grant_rows: list[int] = []
    request_rows: list[int] = []
    new_keys: dict[tuple[int, str], int] = {}
    for index, spec in enumerate(specs):
        pair = (spec.recipient_id, spec.idempotency_key)
        if pair in awards:
            grant_rows.append(index)
            continue
        if pair in requests or approval_needed(spec.points):
            request_rows.append(index)
        else:
            grant_rows.append(index)
        if pair not in requests:
            new_keys.setdefault(pair, spec.points)
    return Routing(grant_rows, request_rows, sum(new_keys.values()))


def award_requests_create(
    *,
    specs: Sequence[GrantSpec],
    requested_by: "User",
    source: str,
    skip_invalid: bool = False,
    now: datetime | None = None,
) -> list[GovernedResult]:
    """Store a request for each row (once per recipient and key); one result per row.

    Rows are checked as grants are (payload rules, active recipient, no self-grant). A row
    whose key already names a request with the same points and reason resolves to it
    (``created=False``); with other points or reason it is a ``RequestConflict``. Invalid
    rows raise ``BulkGrantError`` unless ``skip_invalid``. Inserts go through the unique
    constraint, each in a savepoint, so a concurrent insert of the same key yields one row.
    Must run inside a transaction. Writes no audit entry (the caller describes the action).
    """
    if not specs:
        return []
    now = now or timezone.now()
    errors: dict[int, ValidationError] = dict(validate_specs(specs, granted_by=requested_by))
    if errors and not skip_invalid:
        raise BulkGrantError(errors)
    expires_at = now + timedelta(days=settings.AWARD_REQUEST_TTL_DAYS)
    results: dict[int, GovernedResult] = {}
    for index, spec in enumerate(specs):
        if index in errors:
            continue
        created = True
        try:
            with transaction.atomic():
                request: AwardRequest | None = AwardRequest.objects.create(
                    **spec.stored_fields(),
                    source=source,
                    requested_by=requested_by,
                    granted_at=spec.granted_at,
                    created_at=now,
                    expires_at=expires_at,
                )
        except IntegrityError:
            request = AwardRequest.objects.filter(
                recipient_id=spec.recipient_id, idempotency_key=spec.idempotency_key
            ).first()
            if request is None:  # another integrity problem: not ours to hide
                raise
            created = False
            if not same_payload(request, spec):
                errors[index] = RequestConflict(
                    conflict_message(request, "award request"), existing=request
                )
                continue
        results[index] = GovernedResult(request=request, created=created)
    if errors and not skip_invalid:
        raise BulkGrantError({i: e for i, e in errors.items() if i not in results})
    return [results.get(i) or GovernedResult(error=errors[i]) for i in range(len(specs))]


@transaction.atomic
def awards_grant_governed(
    *,
    grants: Sequence[GrantSpec],
    granted_by: "User",
    source: str,
    grant_bulk: Callable[..., list[GrantResult]] = awards_grant_bulk,
) -> list[GovernedResult]:
    """Grant rows as ``awards_grant_bulk`` does, but under approval and budget rules.

    Locks the granter's budget, refuses the whole call with ``BudgetExceeded`` if its new
    points do not fit, turns rows above the threshold into requests and grants the rest.
    All or nothing: any invalid or conflicting row raises ``BulkGrantError``. One result
    per row, in order. ``grant_bulk`` grants the rows below the threshold
    (``awards_grant_bulk``, or the caller's reference to it).
    """
    budget_lock(granter=granted_by)
    routing = grants_route(grants)
    budget_check(granter=granted_by, points=routing.new_points)
    out: dict[int, GovernedResult] = {}
    try:
        granted = grant_bulk(
            grants=[grants[i] for i in routing.grants], granted_by=granted_by, source=source
        )
    except BulkGrantError as error:
        raise BulkGrantError({routing.grants[i]: e for i, e in error.row_errors.items()}) from None
    for index, result in zip(routing.grants, granted, strict=True):
        out[index] = GovernedResult(award=result.award, created=result.created, score=result.score)
    try:
        requested = award_requests_create(
            specs=[grants[i] for i in routing.requests], requested_by=granted_by, source=source
        )
    except BulkGrantError as error:
        raise BulkGrantError(
            {routing.requests[i]: e for i, e in error.row_errors.items()}
        ) from None
    for index, governed in zip(routing.requests, requested, strict=True):
        out[index] = governed
    return [out[i] for i in range(len(grants))]


@transaction.atomic
def award_grant_or_request(
    *, recipient: "User", granted_by: "User", source: str, **fields: Unpack[StaffGrantFields]
) -> GovernedResult:
    """One staff grant: an award, or an award request when above the threshold; audited.

    Same rules and errors as ``award_grant`` (``ValidationError`` by field, ``AwardConflict``
    for a reused key), plus ``BudgetExceeded`` (on ``points``) when the granter's budget
    would be exceeded and ``RequestConflict`` for a key already naming another request.
    A repeat with the same key returns what the first call made (``created=False``).
    """
    spec = GrantSpec(recipient_id=recipient.pk, **fields)
    budget_lock(granter=granted_by)
    routing = grants_route([spec])
    budget_check(granter=granted_by, points=routing.new_points)
    if routing.grants:
        grant = award_grant_spec(spec, recipient=recipient, granted_by=granted_by, source=source)
        result = GovernedResult(award=grant.award, created=grant.created, score=grant.score)
    else:
        try:
            (result,) = award_requests_create(specs=[spec], requested_by=granted_by, source=source)
        except BulkGrantError as error:
            raise error.row_errors[0] from None
    audit_created([result], actor=granted_by, members={recipient.pk: recipient})
    return result


def awards_grant_routed(
    *,
    grants: Sequence[GrantSpec],
    granted_by: "User",
    source: str,
    members: Mapping[int, Any] | None = None,
) -> list[GovernedResult]:
    """The consumer's grant of award events: above the threshold a request, else an award.

    Like ``awards_grant_bulk(skip_invalid=True)``: refused rows come back with ``error``.
    No budget check here — ingest checked it when it accepted the events (queued award
    events count against the budget). Records an audit entry for each award or request
    created (the key's owner as actor).
    """
    routing = grants_route(grants)
    out: dict[int, GovernedResult] = {}
    granted = awards_grant_bulk(
        grants=[grants[i] for i in routing.grants],
        granted_by=granted_by,
        source=source,
        skip_invalid=True,
    )
    for index, result in zip(routing.grants, granted, strict=True):
        out[index] = GovernedResult(
            award=result.award, created=result.created, score=result.score, error=result.error
        )
    requested = award_requests_create(
        specs=[grants[i] for i in routing.requests],
        requested_by=granted_by,
        source=source,
        skip_invalid=True,
    )
    out.update(zip(routing.requests, requested, strict=True))
    results = [out[i] for i in range(len(grants))]
    audit_created(results, actor=granted_by, members=members)
    return results


__all__ = [
    "GovernedResult",
    "RequestConflict",
    "approval_needed",
    "award_grant_or_request",
    "award_requests_create",
    "awards_grant_governed",
    "grants_route",
]
