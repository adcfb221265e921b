"""The transactional outbox: announcements written with the facts they announce.

``award.granted``, ``award.revoked`` and ``tier.changed`` rows are inserted by the service
that makes each fact true, inside its transaction (``awards.services`` for awards,
``scoring.scores.scores_refresh`` for tier changes), so a rollback announces nothing and a
commit always announces. The UNIQUE (event_type, source_id) constraint makes a repeated
write a no-op, and every insert is one statement however many events a batch produces.

``scoring`` does not know who delivers: the ``webhooks`` app registers a listener
(``outbox_listener_register``) that is called after each commit that wrote events; a lost
call only delays delivery, because the listener's periodic sweep reads the table itself.

Per-member order: every writer inserts a member's events while holding that member's
``UserScore`` row lock (taken by ``scores_refresh``), so a member's events get ids in the
order their transactions commit; deliverers may rely on id order per member.
"""

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from scoring.models import OutboxEvent, TierChange
from scoring.tiers import tier_or_placeholder
from swampclub.dialect import insert_rows

logger = logging.getLogger("swampclub.outbox")

_COLUMNS = ["event_id", "event_type", "member_id", "source_id", "occurred_at", "payload", "context"]
_listeners: list[Callable[[], None]] = []


@dataclass(frozen=True)
class OutboxSpec:
    """One event to record: its type, member, source row id, time and public data."""

    event_type: str
    member_id: int
    source_id: int
    occurred_at: datetime
    payload: Mapping[str, Any]
    context: Mapping[str, Any] = field(default_factory=dict)


def event_id_new() -> str:
    """A new stable event id (``msg_`` + 32 hex characters), used as ``webhook-id``."""
    return f"msg_{uuid.uuid4().hex}"


def tier_json(ordinal: int) -> dict[str, Any]:
    """A tier as it appears in event payloads: ``{"ordinal", "name"}``."""
    return {"ordinal": ordinal, "name": tier_or_placeholder(ordinal).name}


def outbox_listener_register(listener: Callable[[], None]) -> None:
    """Call ``listener()`` after every commit that wrote outbox events (once per commit)."""
    if listener not in _listeners:
        _listeners.append(listener)


def _notify() -> None:
    for listener in _listeners:
        # A listener failure (broker down) must never fail the committed request: the
        # events are in the table and the deliverer's sweep picks them up.
        try:
            listener()
        except Exception:
            logger.warning("outbox listener failed; the sweep will deliver", exc_info=True)


def outbox_record(*, events: Sequence[OutboxSpec]) -> None:
    """Insert ``events`` in one statement, skipping any already recorded for its source.

    Must run inside the transaction that writes the facts (it is atomic with them); after
    that transaction commits the registered listeners are called once.
    """
    if not events:
        return
    rows = [
        (
            event_id_new(),
            spec.event_type,
            spec.member_id,
            spec.source_id,
            spec.occurred_at,
            dict(spec.payload),
            dict(spec.context),
        )
        for spec in events
    ]
    insert_rows(OutboxEvent, _COLUMNS, rows, ignore_conflicts=True)
    if _listeners:
        transaction.on_commit(_notify)


def outbox_tier_changes(
    *, changes: Sequence[Sequence[Any]], usernames: Mapping[int, str], changed_at: datetime
) -> None:
    """Record a ``tier.changed`` event for each TierChange row just inserted by a refresh.

    ``changes`` are the refresh's rows (member id, from, to, cause, total, time); the
    TierChange ids are read back in one query by (member, ``changed_at``), the refresh's
    shared timestamp (index ``scoring_tierchange_member_idx``).
    """
    if not changes:
        return
    by_member = {row[0]: row for row in changes}
    ids = dict(
        TierChange.objects.filter(
            member_id__in_ids=list(by_member), changed_at=changed_at
        ).values_list("member_id", "id")
    )
    events = []
    for member_id, (_, from_tier, to_tier, cause, total, _) in sorted(by_member.items()):
        if member_id not in ids:
            continue
        events.append(
            OutboxSpec(
                event_type=OutboxEvent.Type.TIER_CHANGED,
                member_id=member_id,
                source_id=ids[member_id],
                occurred_at=changed_at,
                payload={
                    "username": usernames[member_id],
                    "from": tier_json(from_tier),
                    "to": tier_json(to_tier),
                    "cause": str(cause),
                    "total_score": total,
                },
            )
        )
    outbox_record(events=events)


def outbox_prune(*, before: datetime, keep: Q | None = None, batch: int = 5000) -> int:
    """Delete outbox events that occurred before ``before``, except those matching ``keep``
    (the deliverer's expression for events it still needs); returns how many were deleted.

    Works in batches of ``batch`` ids, each its own short statement (rows that reference an
    event cascade with it).
    """
    stale = OutboxEvent.objects.filter(occurred_at__lt=before)
    if keep is not None:
        stale = stale.exclude(keep)
    deleted = 0
    while ids := list(stale.order_by("id").values_list("id", flat=True)[:batch]):
        with transaction.atomic():
            OutboxEvent.objects.filter(id__in_ids=ids).delete()
        deleted += len(ids)
        if len(ids) < batch:
            break
    return deleted
