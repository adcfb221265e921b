"""The award events written to the outbox (``award.granted``, ``award.revoked``).

Called by the grant and revoke services inside their transaction, after the recipient's
score was refreshed (so the payload carries the new total and tier, and the events are
written under the member's score-row lock, in commit order). The payloads are the public
contract (SPEC §10, docs/webhooks.md): never a staff note, and a private award's reason is
``null``. ``context`` is for the formatters only (e.g. the Discord message).
"""

from collections.abc import Iterable, Mapping

from django.contrib.auth import get_user_model
from django.utils import timezone

from awards.models import Award
from scoring.models import OutboxEvent
from scoring.outbox import OutboxSpec, outbox_record, tier_json
from scoring.scores import ScoreResult


def award_public_reason(award: Award) -> str | None:
    """The reason as events show it: ``None`` for a private award."""
    return award.reason if award.public else None


def award_events_granted(*, awards: Iterable[Award], scores: Mapping[int, ScoreResult]) -> None:
    """Record one ``award.granted`` event per newly created award (one statement).

    The first award of each recipient in this call carries the refresh's tier move in its
    context, so an announcement can say "reached <tier> — award: …" once.
    """
    awards = sorted(awards, key=lambda a: a.pk)
    if not awards:
        return
    usernames = dict(
        get_user_model()
        .objects.filter(pk__in={a.recipient_id for a in awards})
        .values_list("pk", "username")
    )
    events = []
    seen: set[int] = set()
    now = timezone.now()
    for award in awards:
        score = scores.get(award.recipient_id)
        if score is None:
            continue
        context: dict = {"public": award.public}
        if award.recipient_id not in seen and score.tier_changed:
            context["from_tier"] = score.previous_tier
        seen.add(award.recipient_id)
        events.append(
            OutboxSpec(
                event_type=OutboxEvent.Type.AWARD_GRANTED,
                member_id=award.recipient_id,
                source_id=award.pk,
                occurred_at=now,
                payload={
                    "award_id": award.pk,
                    "username": usernames[award.recipient_id],
                    "points": award.points,
                    "reason": award_public_reason(award),
                    "category": award.category,
                    "total_score": score.total_score,
                    "tier": tier_json(score.tier),
                },
                context=context,
            )
        )
    outbox_record(events=events)


def award_events_revoked(*, award: Award, score: ScoreResult | None) -> None:
    """Record the ``award.revoked`` event of a revocation just written."""
    if score is None:
        return
    outbox_record(
        events=[
            OutboxSpec(
                event_type=OutboxEvent.Type.AWARD_REVOKED,
                member_id=award.recipient_id,
                source_id=award.pk,
                occurred_at=timezone.now(),
                payload={
                    "award_id": award.pk,
                    "username": award.recipient.username,
                    "points": award.points,
                    "total_score": score.total_score,
                    "tier": tier_json(score.tier),
                },
                context={"public": award.public},
            )
        ]
    )
