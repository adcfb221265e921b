"""Validating a request's events, generically: any event type, any shape of JSON.

The loop is the path for everything the typed batch path (``cli_batch``) does not take: other
event types, drift, unknown fields and every invalid request (it names each error). It uses
plain dictionary access and type checks, and consults the registry once per event type.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from scoring.apikeys import api_key_scope_problem, api_key_scopes_effective
from scoring.ingest.cli_invocation import CLI_INVOCATION
from scoring.ingest.conflicts import ConflictCheck
from scoring.ingest.envelope import (
    INSERT_ID_MESSAGE,
    MAX_INSERT_ID_LENGTH,
    MAX_NAME_LENGTH,
    NAME_MESSAGE,
    TIME_MESSAGE,
    Row,
    events_of,
    future_limit,
    future_message,
    is_short_text,
    parse_timestamp,
    request_future_limit,
    text_errors,
)
from scoring.ingest.handling import EventHandling, event_handling
from scoring.ingest.rejections import IngestRejected
from scoring.models import ApiKey


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
    token = request_future_limit.set(latest)
    try:
        return _events_validate(api_key, payload, events, batch, now, latest, text_checked)
    finally:
        request_future_limit.reset(token)


def _events_validate(
    api_key: ApiKey,
    payload: Any,
    events: list[Any],
    batch: bool,
    now: datetime,
    latest: datetime,
    text_checked: bool,
) -> tuple[list[Row], list[ConflictCheck]]:
    errors = [] if text_checked else text_errors(payload, events, batch)
    # Events with unstorable text skip the remaining checks: type checks may query the
    # database with these strings, and PostgreSQL would refuse them.
    skip = {error["index"] for error in errors}
    handlings: dict[str, EventHandling] = {}
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

        # Raw JSON values, checked below (the flags say which are usable).
        name: Any = event.get("event")
        name_ok = type(name) is str and 0 < len(name) <= MAX_NAME_LENGTH and not name.isspace()
        if not name_ok:
            errors.append({"index": index, "field": "event", "message": NAME_MESSAGE})
        distinct_id: Any = event.get("distinct_id")
        if not is_short_text(distinct_id, MAX_NAME_LENGTH):
            errors.append({"index": index, "field": "distinct_id", "message": NAME_MESSAGE})
        insert_id: Any = event.get("insert_id")
        if insert_id is not None and not is_short_text(insert_id, MAX_INSERT_ID_LENGTH):
            errors.append({"index": index, "field": "insert_id", "message": INSERT_ID_MESSAGE})
        timestamp: Any = event.get("timestamp")
        if timestamp is None:
            timestamp = now
        else:
            timestamp = parse_timestamp(timestamp)
            if timestamp is None:
                errors.append({"index": index, "field": "timestamp", "message": TIME_MESSAGE})
            elif timestamp > latest:
                errors.append({"index": index, "field": "timestamp", "message": future_message()})
        properties: Any = event.get("properties")
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
            handling = handlings[name] = event_handling(name)
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
            if not is_short_text(insert_id, MAX_INSERT_ID_LENGTH):
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
