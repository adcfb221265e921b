"""Validating ingest events: the common fields, each type's scope and checks, conflicts.

The loop is the hot path of ingest (up to 1000 events a request), so it uses plain
dictionary access and type checks, and consults the registry once per event type.
"""

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from django.conf import settings

from scoring.apikeys import api_key_scope_problem, api_key_scopes_effective
from scoring.ingest.body import IngestRejected, request_error
from scoring.ingest.wire import cli_invocation_drift
from scoring.models import ApiKey
from scoring.registry import FieldError, event_type_get

MAX_NAME_LENGTH = 200  # event, distinct_id
MAX_INSERT_ID_LENGTH = 100
MAX_COMMAND_LENGTH = 100
# Longer than any ISO-8601 date-time; keeps hostile input away from the parser.
MAX_TIMESTAMP_LENGTH = 64
MAX_TEXT_ERRORS_PER_EVENT = 10

CLI_INVOCATION = "cli_invocation"
AWARD = "award"

NAME_MESSAGE = f"must be a non-empty string of at most {MAX_NAME_LENGTH} characters"
INSERT_ID_MESSAGE = f"must be a non-empty string of at most {MAX_INSERT_ID_LENGTH} characters"
TEXT_MESSAGE = "must not contain NUL (\\u0000) or unpaired surrogate characters"
TIME_MESSAGE = "must be an ISO-8601 date-time"


# The request's ``future_limit``, set by ``events_validate`` for the type checks it calls (one
# clock read and settings lookup per request, not per event).
_request_future_limit: ContextVar[datetime | None] = ContextVar("future_limit", default=None)


def future_limit(now: datetime) -> datetime:
    """The latest acceptable ``timestamp``/``startedAt``: ``TELEMETRY_MAX_FUTURE_S`` ahead."""
    return now + timedelta(seconds=settings.TELEMETRY_MAX_FUTURE_S)


def future_message() -> str:
    """The error for a time too far ahead (SPEC §4: a streak is not built from the future)."""
    return f"must not be more than {settings.TELEMETRY_MAX_FUTURE_S} seconds in the future"


# Characters PostgreSQL cannot store in text or jsonb.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


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


def _is_short_text(value: Any, max_length: int) -> bool:
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


def cli_invocation_validate(event: Mapping[str, Any], api_key: ApiKey) -> list[FieldError]:
    """The ``cli_invocation`` checks beyond the common ones: only what the pipeline reads.

    ``properties.invocation`` must be an object whose ``command`` is a non-empty string of
    at most 100 characters (its lower-cased value is the command group); ``startedAt`` an
    ISO-8601 date-time (the activity date); ``properties.id`` (the default ``insert_id``) a
    non-empty string of at most 100 characters when it is used. Every other property, known
    or not, whatever its type, is stored as sent: the swamp CLI quarantines an entry refused
    again and again, so refusing a field the pipeline never reads would lose the entry for
    nothing (SPEC §4, the acceptance rule; ``docs/ingest.md``).
    """
    properties = event.get("properties")
    # ``type() is dict`` first: JSON gives dicts, and the ABC check is slow on this path.
    if type(properties) is not dict and not isinstance(properties, Mapping):
        return [FieldError("properties", "must be an object")]
    errors: list[FieldError] = []
    invocation = properties.get("invocation")
    if type(invocation) is not dict and not isinstance(invocation, Mapping):
        errors.append(FieldError("properties.invocation", "must be an object"))
    elif not _is_short_text(invocation.get("command"), MAX_COMMAND_LENGTH):
        errors.append(
            FieldError(
                "properties.invocation.command",
                f"must be a non-empty string of at most {MAX_COMMAND_LENGTH} characters",
            )
        )
    started_at = parse_timestamp(properties.get("startedAt"))
    if started_at is None:
        errors.append(FieldError("properties.startedAt", TIME_MESSAGE))
    elif started_at > (_request_future_limit.get() or future_limit(datetime.now(UTC))):
        errors.append(FieldError("properties.startedAt", future_message()))
    event_id = properties.get("id")
    if (
        event.get("insert_id") is None
        and event_id is not None
        and not _is_short_text(event_id, MAX_INSERT_ID_LENGTH)
    ):
        # Without an ``insert_id`` the id is the deduplication key: it must be usable (when
        # both are missing, the common check names ``insert_id``).
        errors.append(FieldError("properties.id", INSERT_ID_MESSAGE))
    return errors


def cli_invocation_default_insert_id(event: Mapping[str, Any], api_key: ApiKey) -> str | None:
    """The ``insert_id`` of a ``cli_invocation`` sent without one: ``properties.id``."""
    properties = event.get("properties")
    if isinstance(properties, Mapping):
        event_id = properties.get("id")
        if isinstance(event_id, str):
            return event_id
    return None


@dataclass(frozen=True)
class _Handling:
    """How ingest treats one event type: the registry's entry over the built-in fallback."""

    scope: str
    validate: Callable[[Mapping[str, Any], ApiKey], list[FieldError]] | None = None
    conflict: Callable[[Sequence[Mapping[str, Any]], ApiKey], str | None] | None = None
    conflict_keys: Callable[[Sequence[Mapping[str, Any]], ApiKey], Iterable[str]] | None = None
    default_insert_id: Callable[[Mapping[str, Any], ApiKey], str | None] | None = None
    # The known fields of a valid event's properties whose type differs from the client's
    # (``wire``); stored with the event and counted per client version for staff.
    drift: Callable[[dict[str, Any]], list[str] | None] | None = None


# The contract for the two known types holds even before (or without) their registration:
# ``cli_invocation`` is validated here, and ``award`` always needs the ``award`` scope.
_BUILTIN = {
    CLI_INVOCATION: _Handling(
        scope=ApiKey.SCOPE_INGEST,
        validate=cli_invocation_validate,
        default_insert_id=cli_invocation_default_insert_id,
        drift=cli_invocation_drift,
    ),
    AWARD: _Handling(scope=ApiKey.SCOPE_AWARD),
}
_UNREGISTERED = _Handling(scope=ApiKey.SCOPE_INGEST)


def _handling(name: str) -> _Handling:
    builtin = _BUILTIN.get(name, _UNREGISTERED)
    registered = event_type_get(name)
    if registered is None:
        return builtin
    return _Handling(
        scope=registered.scope,
        validate=registered.validate or builtin.validate,
        conflict=registered.conflict,
        conflict_keys=registered.conflict_keys,
        default_insert_id=registered.default_insert_id or builtin.default_insert_id,
        drift=builtin.drift,
    )


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


def _text_errors(payload: Any, events: list[Any], batch: bool) -> list[dict[str, Any]]:
    """An error for each unstorable string or key: per event, then elsewhere in the body."""
    errors = []
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


# (insert_id, event, distinct_id, timestamp, properties, drifted fields or None)
Row = tuple[str, str, str, datetime, dict[str, Any], list[str] | None]


@dataclass(frozen=True)
class ConflictCheck:
    """A request's valid events of one type that has a ``conflict`` hook, to check later."""

    name: str
    events: list[Mapping[str, Any]]
    handling: _Handling


def conflict_lock_keys(checks: Sequence[ConflictCheck], api_key: ApiKey) -> list[str]:
    """The sorted, distinct lock names (``<event>:<key>``) the checks' types declare."""
    keys = set()
    for check in checks:
        if check.handling.conflict_keys is not None:
            keys.update(
                f"{check.name}:{key}" for key in check.handling.conflict_keys(check.events, api_key)
            )
    # One order for every request, so two requests locking overlapping keys never deadlock.
    return sorted(keys)


def conflicts_check(checks: Sequence[ConflictCheck], api_key: ApiKey) -> None:
    """Run each type's conflict check; ``IngestRejected`` 409 on the first objection."""
    for check in checks:
        conflict = check.handling.conflict
        message = conflict(check.events, api_key) if conflict else None
        if message:
            raise IngestRejected(
                409, {"error": "conflict", "event": check.name, "message": message}
            )


def events_validate(
    *, api_key: ApiKey, payload: Any, now: datetime, text_checked: bool
) -> tuple[list[Row], list[ConflictCheck]]:
    """Validate a body's events; return one row per event, in order, and the conflict checks.

    A row is ``(insert_id, event, distinct_id, timestamp, properties, drift)``; a missing
    ``timestamp`` is a ``cli_invocation``'s ``startedAt`` (the event's own time), else
    ``now`` itself (the same object), a missing ``insert_id`` the type's default; ``drift`` lists
    the known properties whose type differs from the client's (or None). A ``timestamp``
    more than ``TELEMETRY_MAX_FUTURE_S`` ahead of ``now`` is invalid. Raises
    ``IngestRejected``: 400 for the body's shape; 403 for the first event whose type needs
    a scope the key lacks (that event is not validated further); else 400 listing every
    invalid field of every event. Conflicts with stored state (409) are not checked here:
    the caller runs ``conflicts_check`` in the transaction that stores the rows, so the
    check and the insert are atomic. The list is empty when no event's type has a
    ``conflict`` hook (the ``cli_invocation`` hot path).
    """
    events, batch = events_of(payload)
    latest = future_limit(now)
    token = _request_future_limit.set(latest)
    try:
        return _events_validate(api_key, payload, events, batch, now, latest, text_checked)
    finally:
        _request_future_limit.reset(token)


def _events_validate(
    api_key: ApiKey,
    payload: Any,
    events: list[Any],
    batch: bool,
    now: datetime,
    latest: datetime,
    text_checked: bool,
) -> tuple[list[Row], list[ConflictCheck]]:
    errors = [] if text_checked else _text_errors(payload, events, batch)
    # Events with unstorable text skip the remaining checks: type checks may query the
    # database with these strings, and PostgreSQL would refuse them.
    skip = {error["index"] for error in errors}
    handlings: dict[str, _Handling] = {}
    forbidden: dict[str, Any] | None = None
    rows: list[Row] = []
    conflict_checks: dict[str, list[Mapping[str, Any]]] = {}
    # What the key may do now: its scopes less any its owner no longer has the right to.
    scopes = api_key_scopes_effective(api_key)

    for index, event in enumerate(events):
        if type(event) is not dict:
            errors.append({"index": index, "field": "events", "message": "must be an object"})
            continue
        if index in skip:
            continue
        error_count = len(errors)

        name = event.get("event")
        name_ok = type(name) is str and 0 < len(name) <= MAX_NAME_LENGTH and not name.isspace()
        if not name_ok:
            errors.append({"index": index, "field": "event", "message": NAME_MESSAGE})
        distinct_id = event.get("distinct_id")
        if not _is_short_text(distinct_id, MAX_NAME_LENGTH):
            errors.append({"index": index, "field": "distinct_id", "message": NAME_MESSAGE})
        insert_id = event.get("insert_id")
        if insert_id is not None and not _is_short_text(insert_id, MAX_INSERT_ID_LENGTH):
            errors.append({"index": index, "field": "insert_id", "message": INSERT_ID_MESSAGE})
        timestamp = event.get("timestamp")
        if timestamp is None:
            timestamp = now
        else:
            timestamp = parse_timestamp(timestamp)
            if timestamp is None:
                errors.append({"index": index, "field": "timestamp", "message": TIME_MESSAGE})
            elif timestamp > latest:
                errors.append({"index": index, "field": "timestamp", "message": future_message()})
        properties = event.get("properties")
        properties_ok = type(properties) is dict
        if not properties_ok:
            errors.append(
                {
                    "index": index,
                    "field": "properties",
                    "message": "is required" if properties is None else "must be an object",
                }
            )
        if not name_ok:
            continue

        handling = handlings.get(name)
        if handling is None:
            handling = handlings[name] = _handling(name)
        if handling.scope not in scopes:
            if forbidden is None:
                forbidden = {
                    "error": "forbidden",
                    "index": index,
                    "field": "event",
                    "scope": handling.scope,
                    "message": f"{api_key_scope_problem(api_key, handling.scope)}; "
                    f"{name!r} events need it",
                }
            continue
        if handling.validate is not None and properties_ok:
            errors.extend(
                {"index": index, "field": error.field, "message": error.message}
                for error in handling.validate(event, api_key)
            )
        if len(errors) > error_count:
            continue
        if insert_id is None:
            if handling.default_insert_id is not None:
                insert_id = handling.default_insert_id(event, api_key)
            if not _is_short_text(insert_id, MAX_INSERT_ID_LENGTH):
                hint = " (or properties.id)" if handling.default_insert_id else ""
                errors.append(
                    {
                        "index": index,
                        "field": "insert_id",
                        "message": f"is required{hint}: {INSERT_ID_MESSAGE}",
                    }
                )
                continue
        drift = handling.drift(properties) if handling.drift is not None else None
        if timestamp is now and name == CLI_INVOCATION:
            # The event's own time (validated above): a resend carries the same one, so it
            # lands in the same partition and dedups there (``scoring.ingest.store``).
            timestamp = parse_timestamp(properties["startedAt"])
        rows.append((insert_id, name, distinct_id, timestamp, properties, drift))
        if handling.conflict is not None:
            conflict_checks.setdefault(name, []).append(event)

    if forbidden is not None:
        raise IngestRejected(403, forbidden)
    if errors:
        errors.sort(key=lambda error: -1 if error["index"] is None else error["index"])
        raise IngestRejected(400, {"error": "invalid_events", "errors": errors})
    checks = [
        ConflictCheck(name=name, events=checked, handling=handlings[name])
        for name, checked in conflict_checks.items()
    ]
    return rows, checks
