"""The award rules, each written once: payload limits, their validation and their schema.

Everything that checks or describes an award imports its limits from here: the services
(``award_payload_errors``), the staff forms, the ``award`` event handler, and the OpenAPI
document (``award_properties_schema``, added to ``scoring.openapi`` from
``AwardsConfig.ready()``: scoring never imports awards). Who may see a private award's
details is decided in ``awards.selectors`` (``award_details_visible``).
"""

from typing import Any

from django.conf import settings

from awards.models import Award
from scoring.ingest.wire import NONBLANK

REASON_MIN = 3
REASON_MAX = 500
KEY_MAX = 200
GRANTED_BY_TEXT_MAX = 200
STAFF_NOTE_MAX = 2000
# A recipient's username in an award event (Django's username column).
USERNAME_MAX = 150
CATEGORIES: tuple[str, ...] = tuple(Award.Category.values)


def points_max() -> int:
    """The most points one award may carry (``settings.AWARD_MAX_POINTS``, read per call)."""
    return settings.AWARD_MAX_POINTS


def text_errors(
    value: Any, *, label: str, max_length: int, min_length: int = 0, strip: bool = False
) -> list[str]:
    """Problems with a text field; lengths count the stored form (stripped when ``strip``)."""
    if not isinstance(value, str):
        return [f"{label} must be text."]
    if "\x00" in value:
        return [f"{label} must not contain NUL characters."]
    stored = value.strip() if strip else value
    if min_length and not value.strip():
        return [f"{label} must not be blank."]
    if len(stored) < min_length:
        return [f"{label} must be at least {min_length} characters."]
    if len(stored) > max_length:
        return [f"{label} must be at most {max_length} characters."]
    return []


def reason_errors(reason: Any) -> list[str]:
    """Problems with an award's (or a revocation's, or a rejection's) reason."""
    return text_errors(
        reason, label="Reason", min_length=REASON_MIN, max_length=REASON_MAX, strip=True
    )


def award_payload_errors(
    *,
    points: Any,
    reason: Any,
    idempotency_key: Any,
    category: Any = Award.Category.OTHER,
    public: Any = True,
    staff_note: Any = "",
    granted_by_text: Any = "",
) -> dict[str, list[str]]:
    """The rule violations of an award's payload, by field name; empty when it is valid.

    Pure (no database): points a whole number (``bool`` is not one) in 1..``points_max()``;
    reason 3..500 characters once stripped; category one of ``CATEGORIES``; public a bool;
    idempotency key 1..200 characters; staff note up to 2,000 and ``granted_by_text`` up to
    200 characters; no text may contain NUL (PostgreSQL cannot store it).
    """
    errors: dict[str, list[str]] = {}
    max_points = points_max()
    if isinstance(points, bool) or not isinstance(points, int):
        errors["points"] = ["Points must be a whole number."]
    elif not 1 <= points <= max_points:
        errors["points"] = [f"Points must be between 1 and {max_points:,}."]
    if problems := reason_errors(reason):
        errors["reason"] = problems
    if category not in CATEGORIES:
        errors["category"] = [f"Category must be one of {', '.join(CATEGORIES)}."]
    if not isinstance(public, bool):
        errors["public"] = ["Public must be true or false."]
    if problems := text_errors(
        idempotency_key, label="Idempotency key", min_length=1, max_length=KEY_MAX
    ):
        errors["idempotency_key"] = problems
    if problems := text_errors(staff_note, label="Staff note", max_length=STAFF_NOTE_MAX):
        errors["staff_note"] = problems
    if problems := text_errors(granted_by_text, label="Granted by", max_length=GRANTED_BY_TEXT_MAX):
        errors["granted_by_text"] = problems
    return errors


def award_properties_schema() -> dict[str, Any]:
    """The JSON Schema of an ``award`` event's properties, from the limits above.

    Lengths of the reason and keys count stripped text; tests/fuzz runs the API against the
    document, so the schema and ``award_payload_errors`` cannot drift apart.
    """
    return {
        "type": "object",
        "description": (
            "The ``award`` event (API key scope ``award``). The idempotency key is "
            "``awardId``, else derived from ``reason`` and the event's ``timestamp``."
        ),
        "required": ["username", "points", "reason"],
        "properties": {
            "username": {
                "type": "string",
                "minLength": 1,
                "maxLength": USERNAME_MAX,
                "pattern": NONBLANK,
                "description": "An existing member.",
            },
            "points": {"type": "integer", "minimum": 1, "maximum": points_max()},
            "reason": {
                "type": "string",
                "maxLength": REASON_MAX,
                "pattern": NONBLANK + "[\\s\\S]+" + NONBLANK,
                "description": (
                    f"{REASON_MIN} to {REASON_MAX} characters once stripped; shown to the member."
                ),
            },
            "category": {"type": ["string", "null"], "enum": [*CATEGORIES, None]},
            "public": {"type": ["boolean", "null"]},
            "awardId": {
                "type": ["string", "null"],
                "maxLength": KEY_MAX,
                "pattern": NONBLANK,
                "description": "The idempotency key.",
            },
            "grantedBy": {
                "type": ["string", "null"],
                "maxLength": GRANTED_BY_TEXT_MAX,
                "description": "Kept as text, never used to decide who acts.",
            },
        },
        "additionalProperties": True,
    }
