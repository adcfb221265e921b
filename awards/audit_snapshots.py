"""Awards and award requests as the audit trail records them.

One shape per object, shared by every write that audits one: grants and requests
(``awards.requests``), decisions (``awards.request_decisions``) and the ``award`` event's
admission (``awards.admit``).
"""

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model

from audit.services import AuditItem, audit_record_many
from awards.models import Award, AwardRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from awards.requests import GovernedResult


def award_snapshot(award: Award) -> dict[str, Any]:
    """An award as the audit trail records it."""
    return {
        "id": award.pk,
        "recipient": award.recipient_id,
        "points": award.points,
        "reason": award.reason,
        "category": award.category,
        "public": award.public,
        "idempotency_key": award.idempotency_key,
        "source": award.source,
        "granted_by": award.granted_by_id,
    }


def request_snapshot(request: AwardRequest) -> dict[str, Any]:
    """A request as the audit trail records it."""
    return {
        "id": request.pk,
        "recipient": request.recipient_id,
        "points": request.points,
        "reason": request.reason,
        "idempotency_key": request.idempotency_key,
        "state": request.state,
        "requested_by": request.requested_by_id,
        "decided_by": request.decided_by_id,
        "decision_reason": request.decision_reason,
        "award": request.award_id,
    }


def audit_created(
    results: Sequence["GovernedResult"], *, actor: "User", members: Mapping[int, Any] | None = None
) -> int:
    """One audit entry per award or request these results created (one INSERT).

    Recipients come from ``members`` (users by id) when given, else one query.
    """
    created = [r for r in results if r.created]
    if not created:
        return 0
    # A created result holds the award or the request it created.
    recipient_ids = {row.recipient_id for r in created if (row := r.award or r.request)}
    if members is None or not recipient_ids <= members.keys():
        members = get_user_model().objects.in_bulk(recipient_ids)
    items = []
    for result in created:
        if result.award is not None:
            items.append(
                AuditItem(
                    action="award.grant",
                    actor=actor,
                    obj=result.award,
                    member=members.get(result.award.recipient_id),
                    after=award_snapshot(result.award),
                )
            )
        elif result.request is not None:
            items.append(
                AuditItem(
                    action="award.request",
                    actor=actor,
                    obj=result.request,
                    member=members.get(result.request.recipient_id),
                    after=request_snapshot(result.request),
                )
            )
    return audit_record_many(items)
