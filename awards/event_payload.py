"""An ``award`` event's payload: its properties read and checked, and its idempotency key.

Pure (no database). Used at ingest (``awards.handlers``' hooks, ``awards.admit``) and by the
consumer's handler, so both read an event the same way. The limits come from
``awards.rules``.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from awards.models import Award
from awards.rules import USERNAME_MAX, award_payload_errors
from scoring.ingest import parse_timestamp
from scoring.registry import FieldError

EVENT_NAME = "award"
# SPEC §4: the insert_id column holds at most 100 characters.
INSERT_ID_MAX = 100
# Service field names → the event's property names, for 400 errors that name the field.
FIELD_NAMES = {
    "points": "properties.points",
    "reason": "properties.reason",
    "category": "properties.category",
    "public": "properties.public",
    "idempotency_key": "properties.awardId",
    "granted_by_text": "properties.grantedBy",
}


@dataclass(frozen=True)
class AwardEvent:
    """The award an event carries, after validation."""

    username: str
    points: int
    reason: str
    category: str
    public: bool
    key: str
    granted_by_text: str


def award_key_derive(*, reason: str, timestamp: datetime) -> str:
    """The idempotency key of an award event without ``awardId``: reason + timestamp.

    The timestamp is normalized to UTC ISO-8601, so the same instant written with another
    offset gives the same key.
    """
    instant = timestamp.astimezone(UTC).isoformat()
    digest = hashlib.sha256(f"{reason.strip()}|{instant}".encode()).hexdigest()
    return f"derived:{digest}"


def award_event_parse(
    properties: Any, *, timestamp: datetime | None
) -> tuple[AwardEvent | None, list[FieldError]]:
    """Read and check an award event's properties (no database); the award or the errors.

    ``timestamp`` is the event's timestamp when the sender gave one (it derives the key
    when there is no ``awardId``). Optional properties may be absent or null.
    """
    if not isinstance(properties, Mapping):
        return None, [FieldError("properties", "must be an object")]
    errors: list[FieldError] = []
    # Raw JSON values, checked below (an event with any error is returned as errors only).
    username: Any = properties.get("username")
    if not isinstance(username, str) or not username.strip():
        errors.append(FieldError("properties.username", "is required: the recipient's username"))
    elif len(username) > USERNAME_MAX:
        errors.append(
            FieldError("properties.username", f"must be at most {USERNAME_MAX} characters")
        )

    def optional(name: str, default: Any) -> Any:
        value = properties.get(name)
        return default if value is None else value

    points: Any = properties.get("points")
    if type(points) is float and points.is_integer():
        # JSON has one number type: 250.0 is the integer 250 (as JSON Schema says).
        points = int(points)
    reason: Any = properties.get("reason")
    category = optional("category", Award.Category.OTHER)
    public = optional("public", True)
    granted_by_text = optional("grantedBy", "")
    award_id = properties.get("awardId")
    key: Any
    if award_id is not None:
        key = award_id
    elif timestamp is not None and isinstance(reason, str):
        key = award_key_derive(reason=reason, timestamp=timestamp)
    elif timestamp is None:
        key = None
        errors.append(
            FieldError(
                "properties.awardId",
                "is required when the event has no timestamp (the idempotency key is "
                "awardId, else reason + timestamp)",
            )
        )
    else:
        key = "-"  # no key without a valid reason; the reason's error is reported below

    problems = award_payload_errors(
        points=points,
        reason=reason,
        idempotency_key="-" if key is None else key,
        category=category,
        public=public,
        granted_by_text=granted_by_text,
    )
    for name, messages in problems.items():
        errors.extend(FieldError(FIELD_NAMES[name], message) for message in messages)
    if errors:
        return None, errors
    return (
        AwardEvent(
            username=username,
            points=points,
            reason=reason.strip(),
            category=category,
            public=public,
            key=key,
            granted_by_text=granted_by_text,
        ),
        [],
    )


def event_award(event: Mapping[str, Any]) -> AwardEvent | None:
    """The award a raw ingest event carries, or None when it is invalid."""
    parsed, _ = award_event_parse(event.get("properties"), timestamp=event_timestamp(event))
    return parsed


def event_timestamp(event: Mapping[str, Any]) -> datetime | None:
    # The same parser ingest stores the timestamp with, so the key derived here equals the
    # one the consumer derives from the stored value.
    raw = event.get("timestamp")
    return None if raw is None else parse_timestamp(raw)


def error_text(error: Any) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(
            f"{FIELD_NAMES.get(field, 'properties.' + field)}: {' '.join(messages)}"
            for field, messages in error.message_dict.items()
        )
    return " ".join(error.messages)
