"""The envelope of an ingest request: its shape, the fields every event has, time and text.

What is checked here applies to every event type: ``event``, ``distinct_id``, ``insert_id``,
``timestamp`` and ``properties`` (an object), the batch's shape (1..``INGEST_MAX_EVENTS``
events), the time rules (``TELEMETRY_MAX_FUTURE_S``) and text PostgreSQL cannot store (NUL
and unpaired surrogates).
"""

import re
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from django.conf import settings

from scoring.ingest.rejections import request_error

MAX_NAME_LENGTH = 200  # event, distinct_id
MAX_INSERT_ID_LENGTH = 100
# Longer than any ISO-8601 date-time; keeps hostile input away from the parser.
MAX_TIMESTAMP_LENGTH = 64
MAX_TEXT_ERRORS_PER_EVENT = 10

NAME_MESSAGE = f"must be a non-empty string of at most {MAX_NAME_LENGTH} characters"
INSERT_ID_MESSAGE = f"must be a non-empty string of at most {MAX_INSERT_ID_LENGTH} characters"
TEXT_MESSAGE = "must not contain NUL (\\u0000) or unpaired surrogate characters"
TIME_MESSAGE = "must be an ISO-8601 date-time"

# (insert_id, event, distinct_id, timestamp, properties, drifted fields or None). The
# properties are the decoded object, or its raw JSON text (``msgspec.Raw``) on the typed
# path, or None where the store takes them from the request's text (PostgreSQL).
Row = tuple[str, str, str, datetime, Any, list[str] | None]

# The request's latest acceptable time, set by ``events_validate`` for the type checks it
# calls (one clock read and settings lookup per request, not per event).
request_future_limit: ContextVar[datetime | None] = ContextVar("future_limit", default=None)

# Characters PostgreSQL cannot store in text or jsonb.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def future_limit(now: datetime) -> datetime:
    """The latest acceptable ``timestamp``/``startedAt``: ``TELEMETRY_MAX_FUTURE_S`` ahead."""
    return now + timedelta(seconds=settings.TELEMETRY_MAX_FUTURE_S)


def future_message() -> str:
    """The error for a time too far ahead (SPEC §4: a streak is not built from the future)."""
    return f"must not be more than {settings.TELEMETRY_MAX_FUTURE_S} seconds in the future"


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 date-time as an aware UTC datetime (naive means UTC), or None if invalid."""
    if type(value) is not str or len(value) > MAX_TIMESTAMP_LENGTH:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def is_short_text(value: Any, max_length: int) -> bool:
    """True for a string of 1..``max_length`` characters that is not only whitespace."""
    return type(value) is str and 0 < len(value) <= max_length and not value.isspace()


def _path(parent: str, key: Any) -> str:
    # Dotted, with unstorable characters spelled as escapes (``a.ke\u0000y``) so the path
    # itself is readable; an empty key is ``a[""]``.
    key = _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(key))
    if not key:
        return f'{parent}[""]'
    return f"{parent}.{key}" if parent else key


def unstorable_fields(value: Any) -> Iterator[str]:
    """Paths of every string or key in ``value`` that PostgreSQL cannot store."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                yield path
        elif isinstance(node, dict):
            for key, child in reversed(node.items()):
                if _UNSTORABLE.search(str(key)):
                    yield _path(path, key)
                else:
                    stack.append((child, _path(path, key)))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(node))))


def events_of(payload: Any) -> tuple[list[Any], bool]:
    """The events of a body and whether it was a batch; 400 for any other shape."""
    if type(payload) is not dict:
        raise request_error(
            "invalid_events", "body", 'must be an event object or {"events": [...]}'
        )
    if "events" not in payload:
        return [payload], False
    events = payload["events"]
    limit = settings.INGEST_MAX_EVENTS
    if type(events) is not list:
        raise request_error("invalid_events", "events", "must be a list of events")
    if not 1 <= len(events) <= limit:
        raise request_error(
            "invalid_events", "events", f"must hold 1 to {limit} events, got {len(events)}"
        )
    return events, True


def text_errors(payload: Any, events: list[Any], batch: bool) -> list[dict[str, Any]]:
    """An error for each unstorable string or key: per event, then elsewhere in the body."""
    errors: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        if type(event) is dict:
            errors.extend(
                {"index": index, "field": field, "message": TEXT_MESSAGE}
                for field in islice(unstorable_fields(event), MAX_TEXT_ERRORS_PER_EVENT)
            )
    if batch:
        # Other keys of the batch object are not stored but reach the database with it.
        rest = {key: value for key, value in payload.items() if key != "events"}
        errors.extend(
            {"index": None, "field": field, "message": TEXT_MESSAGE}
            for field in islice(unstorable_fields(rest), MAX_TEXT_ERRORS_PER_EVENT)
        )
    return errors
