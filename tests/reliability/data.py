"""Backlogs of pending work, written straight to the database (the subject is what follows)."""

from datetime import UTC, datetime, timedelta

from scoring.models import TelemetryEvent
from tests.factories import TelemetryEventFactory, UserFactory

GROUPS = ("model", "workflow", "data", "vault", "Model")


def pending_cli_events(*, members: int, per_member: int, prefix: str = "evt") -> list[int]:
    """Create ``members`` members with ``per_member`` pending ``cli_invocation`` events each,
    spread over the last ten days and five command groups (one spelled with a capital, which
    folds into ``model``). Returns the member ids."""
    now = datetime.now(UTC)
    users = [UserFactory(username=f"{prefix}-member-{m}") for m in range(members)]
    rows = []
    for m, user in enumerate(users):
        for n in range(per_member):
            # Member m is active on the last (m % 10) + 1 days: streaks of every length.
            moment = now - timedelta(days=n % (m % 10 + 1), minutes=n % 600)
            event = TelemetryEventFactory.build(
                insert_id=f"{prefix}-{m}-{n}", member=user, timestamp=moment, received_at=now
            )
            event.properties["invocation"]["command"] = GROUPS[(n + m) % len(GROUPS)]
            rows.append(event)
    TelemetryEvent.objects.bulk_create(rows, batch_size=2000)
    return [user.pk for user in users]


def pending_award_events(*, granter, recipient_ids: list[int], points: int = 25000) -> int:
    """One pending ``award`` event per recipient sent by ``granter``'s key, plus a resend of
    the first one under a fresh insert_id (same awardId: it must count once). Returns the
    number of events created."""
    now = datetime.now(UTC)
    users = UserFactory._meta.model.objects.in_bulk(recipient_ids)
    rows = []
    for n, recipient_id in enumerate([*recipient_ids, recipient_ids[0]]):
        rows.append(
            TelemetryEventFactory.build(
                insert_id=f"award-event-{n}",
                event="award",
                member=granter,
                distinct_id="award-bot",
                timestamp=now,
                received_at=now,
                properties={
                    "username": users[recipient_id].username,
                    "points": points,
                    "reason": "Kept the swamp tidy",
                    "category": "community",
                    "public": True,
                    "awardId": f"tidy-{recipient_id}",
                },
            )
        )
    TelemetryEvent.objects.bulk_create(rows)
    return len(rows)
