"""The ``award`` telemetry event (SPEC §4): ingest validation and the consumer's handler.

Registered with ``scoring.registry`` from ``AwardsConfig.ready()``; ``scoring`` never
imports this module. An award event looks like::

    {"event": "award", "distinct_id": "...", "timestamp": "2026-11-24T10:00:00Z",
     "properties": {"username": "ada", "points": 500, "reason": "Fixed the docs",
                    "category": "content", "public": true, "awardId": "gh-227",
                    "grantedBy": "release bot"}}

How the checks are split between the hooks:

- ``validate`` (per event, 400 with the field): the shape and range of every property, the
  recipient exists and is active, nobody grants to themselves, and an idempotency key can
  be formed. The member lookup is one indexed query per distinct username, remembered for
  the request's ``ApiKey`` object in an ``InstanceMemo`` (positive answers only, so a stale
  entry can only let an event through to the consumer, which checks again and rejects it
  with a reason).
- ``conflict`` (whole request, 409): the key is already used for that recipient with other
  points or reason — by a stored award, by an award event still waiting in the queue, or by
  another event of the same request. Set-based: two queries per request. Ingest runs it in
  the transaction that stores the request, after locking each (recipient, key) named by
  ``conflict_keys``, so two requests using one key with different payloads at the same
  moment are checked one after the other: the later one sees the earlier one's event and
  is answered 409.
- ``handle`` (consumer, inside its batch transaction): re-reads the stored events, grants
  them through ``awards_grant_routed`` (``awards_grant_bulk(skip_invalid=True)``, or an
  award request above the approval threshold) and marks refused ones rejected
  with the reason, so one bad event never blocks the rest.

The idempotency key is ``awardId`` when given; otherwise ``derived:`` + the SHA-256 of the
stripped reason and the event timestamp (UTC, ISO-8601), so a resent event — same envelope,
or a fresh ``insert_id`` — maps to the same key and the award counts once.
"""

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model

from awards.event_payload import (
    EVENT_NAME,
    INSERT_ID_MAX,
    AwardEvent,
    award_event_parse,
    error_text,
    event_award,
    event_timestamp,
)
from awards.models import Award
from awards.requests import awards_grant_routed
from awards.services import GrantSpec
from scoring.apikeys import owners_authority
from scoring.models import ApiKey, TelemetryEvent
from scoring.registry import FieldError, HandleResult
from swampclub.memo import InstanceMemo

# Recipient ids by username, for the life of one request's ApiKey object (see below).
_recipient_ids: InstanceMemo[dict[str, int]] = InstanceMemo()


def recipient_id_for(api_key: ApiKey, username: str) -> int | None:
    """The id of the active member ``username``, or None; remembered for this request."""
    # Remembered for the ApiKey object, which lives for one request, so a batch of events
    # for a few members costs a few queries. Only hits are kept: a miss asks again.
    cache = _recipient_ids.get_or_set(api_key, dict)
    if username not in cache:
        member_id = (
            get_user_model()
            .objects.filter(username=username, is_active=True)
            .values_list("pk", flat=True)
            .first()
        )
        if member_id is None:
            return None
        cache[username] = member_id
    return cache[username]


def award_event_validate(event: Mapping[str, Any], api_key: ApiKey) -> list[FieldError]:
    """Ingest check of one award event (SPEC §4); the errors name ``properties.<field>``."""
    timestamp = event_timestamp(event)
    if timestamp is None and event.get("timestamp") is not None:
        # Ingest reports the unreadable timestamp itself; check the rest as if it were
        # valid rather than also demanding an awardId.
        timestamp = datetime.now(UTC)
    award, errors = award_event_parse(event.get("properties"), timestamp=timestamp)
    if award is None:
        return errors
    member_id = recipient_id_for(api_key, award.username)
    if member_id is None:
        return [FieldError("properties.username", "no active member with this username")]
    if member_id == api_key.owner_id:
        return [FieldError("properties.username", "nobody can grant an award to themselves")]
    return []


def award_event_insert_id(event: Mapping[str, Any], api_key: ApiKey) -> str | None:
    """The default insert_id: ``award:<username>:<key>`` (hashed when over 100 characters).

    Resending the same award without an insert_id is then answered as a duplicate at ingest.
    """
    award = event_award(event)
    if award is None:
        return None
    insert_id = f"award:{award.username}:{award.key}"
    if len(insert_id) <= INSERT_ID_MAX:
        return insert_id
    digest = hashlib.sha256(f"{award.username}\n{award.key}".encode()).hexdigest()
    return f"award:{digest}"


def pending_awards(usernames: set[str]) -> list[AwardEvent]:
    """Award events for ``usernames`` still waiting in the queue, as parsed awards."""
    pending = (
        TelemetryEvent.objects.pending()
        .filter(event=EVENT_NAME, properties__username__in=sorted(usernames))
        .values_list("properties", "timestamp")
    )
    awards = []
    for properties, timestamp in pending:
        award, _ = award_event_parse(properties, timestamp=timestamp)
        if award is not None:
            awards.append(award)
    return awards


def award_events_conflict(events: Sequence[Mapping[str, Any]], api_key: ApiKey) -> str | None:
    """The 409 message when an award key is already used with other points or reason.

    Checked against the other events of this request, the stored awards and the award
    events still pending in the queue (which will become awards first). Two queries.
    """
    awards = [a for e in events if e.get("event") == EVENT_NAME and (a := event_award(e))]
    if not awards:
        return None

    def message(award: AwardEvent, where: str) -> str:
        return (
            f"award key {award.key!r} for member {award.username!r} is already used {where} "
            "with different points or reason"
        )

    seen: dict[tuple[str, str], AwardEvent] = {}
    for award in awards:
        first = seen.setdefault((award.username, award.key), award)
        if (first.points, first.reason) != (award.points, award.reason):
            return message(award, "by another event of this request")

    # The queue first, then the awards: an event the consumer grants between the two
    # queries is then seen either still pending or already granted, never neither.
    usernames = {a.username for a in awards}
    for queued in pending_awards(usernames):
        prior = seen.get((queued.username, queued.key))
        if prior is not None and (prior.points, prior.reason) != (queued.points, queued.reason):
            return message(prior, "by an award event waiting to be processed")

    stored = Award.objects.filter(
        recipient__username__in=usernames, idempotency_key__in={a.key for a in awards}
    ).values_list("recipient__username", "idempotency_key", "points", "reason")
    stored_payload = {(u, k): (p, r) for u, k, p, r in stored}
    for award in awards:
        payload = stored_payload.get((award.username, award.key))
        if payload is not None and payload != (award.points, award.reason):
            return message(award, "by a granted award")
    return None


def award_events_conflict_keys(events: Sequence[Mapping[str, Any]], api_key: ApiKey) -> set[str]:
    """What a request's award events could conflict over: recipient and key, one per award.

    Ingest locks these while it checks conflicts and stores the request (no query here).
    """
    return {
        f"{award.username}\n{award.key}"
        for event in events
        if event.get("event") == EVENT_NAME and (award := event_award(event))
    }


def award_events_handle(events: Sequence[TelemetryEvent]) -> HandleResult:
    """Grant the awards a batch of claimed ``award`` events carry (the consumer's handler).

    Runs inside the consumer's batch transaction. Each event is granted through
    ``awards_grant_routed`` with source ``api``, the event's member (the API key's owner) as
    granter and ``grantedBy`` kept as text, at the event's timestamp. Set-based: one query
    for the recipients and granters, one for the granters' authority (the owner must still
    be active staff holding ``awards.add_award``), then one bulk grant per granter.

    An event whose award is already stored with the same payload (a replay with a fresh
    insert_id, a redelivered batch) counts as processed and adds nothing. An event that is
    now invalid (say, the recipient was deactivated after ingest) or conflicts with a stored
    award is rejected with the reason; the others still apply.
    """
    result = HandleResult()
    parsed: dict[int, AwardEvent] = {}
    for event in events:
        properties = event.properties if isinstance(event.properties, Mapping) else None
        has_award_id = properties is not None and properties.get("awardId") is not None
        # With no awardId the sender gave a timestamp (ingest refuses it otherwise), and the
        # stored timestamp is that one: the key derives from it exactly as at ingest.
        award, errors = award_event_parse(
            event.properties, timestamp=None if has_award_id else event.timestamp
        )
        if award is None:
            result.rejected[event.pk] = "; ".join(f"{e.field} {e.message}" for e in errors)
        else:
            parsed[event.pk] = award
    if not parsed:
        return result

    user_model = get_user_model()
    usernames = {a.username for a in parsed.values()}
    granter_ids = {e.member_id for e in events if e.pk in parsed}
    users = {
        u.pk: u
        for u in user_model.objects.filter(pk__in=granter_ids)
        | user_model.objects.filter(username__in=usernames)
    }
    recipient_ids = {u.username: u.pk for u in users.values() if u.username in usernames}

    # The key's owner grants: checked again now, so an owner demoted between ingest and
    # this batch grants nothing (the event is rejected with the reason).
    authority = owners_authority(owner_ids=granter_ids)
    by_granter: dict[int, list[TelemetryEvent]] = defaultdict(list)
    for event in events:
        if event.pk not in parsed:
            continue
        granter = authority.get(event.member_id)
        problem = granter.scope_problem(ApiKey.SCOPE_AWARD) if granter else "no such owner"
        if problem is not None:
            result.rejected[event.pk] = f"the key's owner may not grant awards now: {problem}"
            continue
        if parsed[event.pk].username not in recipient_ids:
            result.rejected[event.pk] = "properties.username: no member with this username"
            continue
        by_granter[event.member_id].append(event)

    for granter_id, granter_events in sorted(by_granter.items()):
        specs = [
            GrantSpec(
                recipient_id=recipient_ids[parsed[e.pk].username],
                points=parsed[e.pk].points,
                reason=parsed[e.pk].reason,
                idempotency_key=parsed[e.pk].key,
                category=parsed[e.pk].category,
                public=parsed[e.pk].public,
                granted_by_text=parsed[e.pk].granted_by_text,
                # Never a client-supplied future time: ingest allows a few minutes of clock
                # skew, the award is dated no later than its arrival.
                granted_at=min(e.timestamp, e.received_at),
            )
            for e in granter_events
        ]
        # Above the approval threshold an event becomes an award request (awards.requests).
        grants = awards_grant_routed(
            grants=specs, granted_by=users[granter_id], source=Award.Source.API, members=users
        )
        for event, grant in zip(granter_events, grants, strict=True):
            if grant.error is not None:
                result.rejected[event.pk] = error_text(grant.error)
            elif grant.created and grant.award is not None:
                result.touched_member_ids.add(grant.award.recipient_id)
    return result
