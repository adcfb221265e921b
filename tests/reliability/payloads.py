"""Request bodies for ``POST /ingest`` as the swamp CLI and an awarding bot send them."""

from datetime import UTC, datetime, timedelta
from typing import Any


def cli_event(
    insert_id: str, *, command: str = "model", started_at: datetime | None = None
) -> dict[str, Any]:
    """A valid ``cli_invocation`` event."""
    started = started_at or datetime.now(UTC)
    return {
        "event": "cli_invocation",
        "distinct_id": "device-1",
        "insert_id": insert_id,
        "timestamp": started.isoformat(),
        "properties": {
            "id": insert_id,
            "invocation": {
                "command": command,
                "subcommand": "run",
                "args": [],
                "optionKeys": [],
                "globalOptions": [],
            },
            "result": {"status": "success", "exitCode": 0},
            "startedAt": started.isoformat(),
            "completedAt": (started + timedelta(milliseconds=120)).isoformat(),
            "durationMs": 120,
            "swampVersion": "1.4.0",
            "denoVersion": "2.1.0",
            "platform": "linux",
        },
    }


def cli_events(prefix: str, count: int, *, days: int = 1) -> list[dict[str, Any]]:
    """``count`` events over the last ``days`` days, cycling through four command groups."""
    now = datetime.now(UTC)
    groups = ("model", "workflow", "data", "vault")
    return [
        cli_event(
            f"{prefix}-{n}",
            command=groups[n % len(groups)],
            started_at=now - timedelta(days=n % days, minutes=n % 50),
        )
        for n in range(count)
    ]


def award_event(
    *, username: str, points: int, reason: str, award_id: str, insert_id: str | None = None
) -> dict[str, Any]:
    """A valid ``award`` event (needs a key with the ``award`` scope)."""
    event: dict[str, Any] = {
        "event": "award",
        "distinct_id": "award-bot",
        "timestamp": datetime.now(UTC).isoformat(),
        "properties": {
            "username": username,
            "points": points,
            "reason": reason,
            "category": "community",
            "public": True,
            "awardId": award_id,
            "grantedBy": "award-bot",
        },
    }
    if insert_id is not None:
        event["insert_id"] = insert_id
    return event
