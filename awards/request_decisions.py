"""Deciding award requests: approve, reject, expire (the four-eyes rule of ``awards.requests``).

A pending request is decided by a second staff member holding ``awards.approve_award``
(never its requester); deciding locks the request row, so two approvers cannot both
approve. Every decision is audited.
"""

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from awards.audit_snapshots import request_snapshot
from awards.models import Award, AwardRequest
from awards.rules import reason_errors
from awards.services import (
    award_grant,
)
from scoring.scores import ScoreResult

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class ApproveResult(NamedTuple):
    """An approval's outcome; ``created`` is False when the request was already approved."""

    request: AwardRequest
    award: Award
    created: bool
    score: ScoreResult | None


def _granted(award: Award | None) -> Award:
    # An approved request names its award (PROTECT keeps it), and ``award_grant`` returns
    # the award or raises.
    if award is None:
        raise ValueError("an approved request without its award")
    return award


def _locked(request_id: int) -> AwardRequest:
    return (
        AwardRequest.objects.select_for_update(of=("self",))
        .select_related("recipient", "requested_by")
        .get(pk=request_id)
    )


def _may_decide(request: AwardRequest, user: "User") -> None:
    if user.pk in (request.requested_by_id, request.recipient_id):
        raise PermissionDenied("Neither the requester nor the recipient may decide a request.")


def _decision_record(
    request: AwardRequest,
    *,
    state: str,
    decider: "User",
    now: datetime,
    fields: list[str],
    before: dict,
    after_extra: dict | None = None,
) -> None:
    """Save ``request`` as decided (``state``, by ``decider`` at ``now``, with its other
    changed ``fields``) and audit it as ``request.approve`` or ``request.reject``."""
    request.state = state
    request.decided_by = decider
    request.decided_at = now
    request.save(update_fields=["state", "decided_by", "decided_at", *fields])
    audit_record(
        action="request.approve" if state == AwardRequest.State.APPROVED else "request.reject",
        actor=decider,
        obj=request,
        member=request.recipient,
        before=before,
        after={**request_snapshot(request), **(after_extra or {})},
    )


@transaction.atomic
def award_request_approve(*, request_id: int, approver: "User") -> ApproveResult:
    """Approve a pending request: grant its award once through ``award_grant``.

    The request row is locked first, so concurrent approvals are served one at a time; the
    first grants (the requester as granter of record, the request's key, source and
    payload) and marks the request approved, later ones return the same award with
    ``created=False``. Raises ``PermissionDenied`` when the approver is the requester or the
    recipient, ``AwardRequest.DoesNotExist`` for an unknown id, and ``ValidationError``
    for a rejected or expired request (or whatever ``award_grant`` refuses). Audited.
    """
    request = _locked(request_id)
    _may_decide(request, approver)
    if request.state == AwardRequest.State.APPROVED:
        return ApproveResult(
            request=request, award=_granted(request.award), created=False, score=None
        )
    now = timezone.now()
    state = request.effective_state(now)
    if state != AwardRequest.State.PENDING:
        raise ValidationError(f"This request is {state}; it can no longer be approved.")
    before = request_snapshot(request)
    grant = award_grant(
        recipient=request.recipient,
        points=request.points,
        reason=request.reason,
        idempotency_key=request.idempotency_key,
        granted_by=request.requested_by,
        source=request.source,
        category=request.category,
        public=request.public,
        staff_note=request.staff_note,
        granted_by_text=request.granted_by_text,
        granted_at=request.granted_at,
    )
    request.award = grant.award
    _decision_record(
        request,
        state=AwardRequest.State.APPROVED,
        decider=approver,
        now=now,
        fields=["award"],
        before=before,
        after_extra={"award_created": grant.created},
    )
    return ApproveResult(
        request=request, award=_granted(grant.award), created=grant.created, score=grant.score
    )


@transaction.atomic
def award_request_reject(*, request_id: int, rejecter: "User", reason: str) -> AwardRequest:
    """Reject a pending request with a reason (3..500 characters); it grants nothing.

    Idempotent for an already rejected request. Same permission rule and errors as
    approval; an approved or expired request cannot be rejected. Audited.
    """
    if problems := reason_errors(reason):
        raise ValidationError({"reason": problems})
    request = _locked(request_id)
    _may_decide(request, rejecter)
    if request.state == AwardRequest.State.REJECTED:
        return request
    now = timezone.now()
    state = request.effective_state(now)
    if state != AwardRequest.State.PENDING:
        raise ValidationError(f"This request is {state}; it can no longer be rejected.")
    before = request_snapshot(request)
    request.decision_reason = reason.strip()
    _decision_record(
        request,
        state=AwardRequest.State.REJECTED,
        decider=rejecter,
        now=now,
        fields=["decision_reason"],
        before=before,
    )
    return request


def award_requests_expire(*, now: datetime | None = None) -> int:
    """Mark pending requests past their expiry as expired; return how many.

    Only bookkeeping: an overdue request already reads as expired and cannot be approved.
    """
    now = now or timezone.now()
    return AwardRequest.objects.filter(
        state=AwardRequest.State.PENDING, expires_at__lte=now
    ).update(state=AwardRequest.State.EXPIRED)


def award_requests_pending_count() -> int:
    """How many requests wait for a decision (not expired)."""
    return AwardRequest.objects.filter(
        state=AwardRequest.State.PENDING, expires_at__gt=timezone.now()
    ).count()
