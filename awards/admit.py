"""Ingest's last word on ``award`` events: the granter's budget and four-eyes requests.

Hooked into the ``award`` event type as ``admit`` (see ``scoring.registry``): ingest calls
it inside the transaction that stores the request, after the conflict check. It

1. locks the granter's budget (the API key's owner) and refuses the whole request with 422
   ``{"error": "invalid_events", "errors": [{"index", "field": "properties.points",
   "message"}]}`` when its new points do not fit — nothing is stored;
2. turns each event above ``AWARD_APPROVAL_THRESHOLD`` into an award request at once (so
   staff see it immediately; the consumer later finds it there and grants nothing), and
3. answers ``{"pending_approval": n}``: how many of this request's award events now wait for
   approval — a replay of the same event counts its existing request, never a new one (the
   key is left out when n is 0, so small awards are answered exactly as before).

"New points" count once per (recipient, key) not already an award, a request or a queued
award event, so replays and resends never spend budget twice.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils import timezone

from awards.audit_snapshots import audit_created
from awards.budgets import budget_exceeded_message, budget_get, budget_lock
from awards.event_payload import event_award, event_timestamp
from awards.handlers import pending_awards, recipient_id_for
from awards.models import Award, AwardRequest
from awards.requests import approval_needed, award_requests_create, stored_by_key
from awards.services import GrantSpec
from scoring.ingest import IngestRejected
from scoring.models import ApiKey


def award_events_admit(
    indexed: Sequence[tuple[int, Mapping[str, Any]]], api_key: ApiKey
) -> Mapping[str, int]:
    """Check the budget and create requests for a request's award events (see module doc)."""
    granter = api_key.owner
    rows: list[tuple[int, GrantSpec]] = []
    usernames = set()
    for index, event in indexed:
        award = event_award(event)
        if award is None:
            continue
        recipient_id = recipient_id_for(api_key, award.username)
        if recipient_id is None:
            continue
        usernames.add(award.username)
        granted_at = event_timestamp(event)
        rows.append(
            (
                index,
                GrantSpec(
                    recipient_id=recipient_id,
                    points=award.points,
                    reason=award.reason,
                    idempotency_key=award.key,
                    category=award.category,
                    public=award.public,
                    granted_by_text=award.granted_by_text,
                    granted_at=granted_at,
                ),
            )
        )
    if not rows:
        return {}

    budget_lock(granter=granter)
    specs = [spec for _, spec in rows]
    awards = stored_by_key(specs, Award)
    requests = stored_by_key(specs, AwardRequest)
    queued = {(a.username, a.key) for a in pending_awards(usernames)}
    names = {recipient_id: name for name, recipient_id in _recipient_ids(api_key, usernames)}
    budget = budget_get(granter=granter)
    errors = []
    if budget.limit is not None:
        spent, seen = 0, set()
        for index, spec in rows:
            pair = (spec.recipient_id, spec.idempotency_key)
            if pair in awards or pair in requests or pair in seen:
                continue
            if (names[spec.recipient_id], spec.idempotency_key) in queued:
                continue
            seen.add(pair)
            spent += spec.points
            if not budget.allows(spent):
                errors.append(
                    {
                        "index": index,
                        "field": "properties.points",
                        "message": budget_exceeded_message(budget, spent),
                    }
                )
    if errors:
        raise IngestRejected(422, {"error": "invalid_events", "errors": errors})

    to_request = [
        (index, spec)
        for index, spec in rows
        if (spec.recipient_id, spec.idempotency_key) not in awards
        and ((spec.recipient_id, spec.idempotency_key) in requests or approval_needed(spec.points))
    ]
    results = award_requests_create(
        specs=[spec for _, spec in to_request],
        requested_by=granter,
        source=Award.Source.API,
        skip_invalid=True,
    )
    audit_created(results, actor=granter)
    now = timezone.now()
    pending = sum(
        1
        for result in results
        if result.request is not None
        and result.request.effective_state(now) == AwardRequest.State.PENDING
    )
    # Only when something waits: a request of small awards answers exactly as before.
    return {"pending_approval": pending} if pending else {}


def _recipient_ids(api_key: ApiKey, usernames: set[str]) -> list[tuple[str, int | None]]:
    return [(name, recipient_id_for(api_key, name)) for name in usernames]
