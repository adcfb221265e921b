"""Telemetry ingest (SPEC §4): read the request body, validate every event, store them at once.

The request is handled in three steps, each of which may refuse it with an
``IngestRejected`` carrying the HTTP answer:

1. ``ingest_request_parse`` — Content-Type (415), size (413), UTF-8 and JSON (400), nesting
   depth (400), and a scan of the raw body for escapes PostgreSQL cannot store.
2. ``events_ingest`` — the shape of the body and of every event (400, all errors at once),
   the scope each event type needs (403), the event types' own checks (400) and conflicts
   with stored state (409).
3. One set-based ``INSERT ... ON CONFLICT (insert_id) DO NOTHING`` for the whole request;
   known ``insert_id`` values are counted as duplicates, never stored twice.

Validation is all-or-nothing: one bad event and nothing is stored. The per-event work is
plain dictionary access; the registry is consulted once per event type per request.
"""

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection, transaction
from django.http import HttpRequest, UnreadablePostError
from django.utils import timezone

from scoring.models import ApiKey, TelemetryEvent
from scoring.registry import FieldError, event_type_get
from scoring.tasks import consumer_wake

MAX_DEPTH = 32
MAX_NAME_LENGTH = 200  # event, distinct_id
MAX_INSERT_ID_LENGTH = 100
MAX_COMMAND_LENGTH = 100
# Longer than any ISO-8601 date-time; keeps hostile input away from the parser.
MAX_TIMESTAMP_LENGTH = 64
MAX_TEXT_ERRORS_PER_EVENT = 10

CLI_INVOCATION = "cli_invocation"
AWARD = "award"

# Characters PostgreSQL cannot store in text or jsonb: NUL, and unpaired UTF-16 surrogates
# (JSON can spell both as \u escapes; Python decodes them, psycopg then fails on them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The only way such characters get into a parsed body is an escape (strict JSON refuses raw
# control characters, and strict UTF-8 decoding refuses encoded surrogates), so a body
# without these escapes needs no per-string scan.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


@dataclass(frozen=True)
class IngestResult:
    """What one request stored: new events and already-seen ``insert_id`` values."""

    accepted: int
    duplicates: int


@dataclass(frozen=True)
class IngestPayload:
    """A parsed request body; ``text_checked`` when it provably holds only storable text."""

    data: Any
    text_checked: bool


class IngestRejected(Exception):
    """A refused ingest request: the HTTP status, JSON body and extra headers to answer."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("message") or body.get("error"))
        self.status = status
        self.body = body
        self.headers = headers or {}


def _request_error(error: str, field: str, message: str, status: int = 400) -> IngestRejected:
    # Request-level errors name their field at the top and, like per-event errors, in
    # ``errors`` (with a null index) so clients can read every 400 the same way.
    return IngestRejected(
        status,
        {
            "error": error,
            "field": field,
            "message": message,
            "errors": [{"index": None, "field": field, "message": message}],
        },
    )


# --- 1. The request -------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        # 1e400 parses to inf, which neither JSON nor jsonb can hold.
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than ``limit`` (the top level is depth 1)."""
    if type(value) not in (dict, list):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) in (dict, list):
                stack.append((child, depth + 1))
    return False


def ingest_request_parse(request: HttpRequest) -> IngestPayload:
    """Read and parse the JSON body of an ingest request.

    Raises ``IngestRejected``: 415 unless the Content-Type is ``application/json`` (a
    ``charset`` parameter must be UTF-8); 413 when the declared or actual body exceeds
    ``INGEST_MAX_BYTES`` (checked before the body is read when the length is declared);
    400 for an invalid Content-Length, a body that is not UTF-8 JSON, non-finite numbers,
    or nesting deeper than ``MAX_DEPTH``.
    """
    if request.content_type != "application/json":
        raise IngestRejected(
            415,
            {"error": "unsupported_media_type", "message": "Content-Type must be application/json"},
        )
    charset = request.content_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise IngestRejected(
            415, {"error": "unsupported_media_type", "message": "the charset must be UTF-8"}
        )
    max_bytes = settings.INGEST_MAX_BYTES
    too_large = IngestRejected(
        413,
        {
            "error": "payload_too_large",
            "message": f"the body must not exceed {max_bytes} bytes",
            "max_bytes": max_bytes,
        },
    )
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        declared_length = int(declared)
    except ValueError:
        raise _request_error("invalid_request", "Content-Length", "must be an integer") from None
    if declared_length > max_bytes:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    except UnreadablePostError:
        raise _request_error("invalid_json", "body", "the body could not be read") from None
    if len(body) > max_bytes:
        raise too_large
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _request_error(
            "invalid_json", "body", f"not valid UTF-8 (byte {exc.start})"
        ) from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except RecursionError:
        raise _request_error(
            "invalid_json", "body", f"nested deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise _request_error("invalid_json", "body", f"not valid JSON: {exc}") from None
    if _depth_exceeds(data, MAX_DEPTH):
        raise _request_error("invalid_json", "body", f"nested deeper than {MAX_DEPTH} levels")
    return IngestPayload(data=data, text_checked=_UNSTORABLE_ESCAPE.search(body) is None)


# --- 2. Validation ----------------------------------------------------------------------------


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 date-time as an aware UTC datetime (naive means UTC), or None if invalid."""
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_LENGTH:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _is_short_text(value: Any, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length and not value.isspace()


def _unstorable_fields(value: Any) -> Iterator[str]:
    """Dotted paths of every string or key in ``value`` that PostgreSQL cannot store."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                yield path
        elif isinstance(node, dict):
            for key, child in reversed(node.items()):
                key_text = str(key)
                if _UNSTORABLE.search(key_text):
                    key_text = _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", key_text)
                    yield f"{path}.{key_text}" if path else key_text
                    continue
                stack.append((child, f"{path}.{key_text}" if path else key_text))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(node))))


def cli_invocation_validate(event: Mapping[str, Any], api_key: ApiKey) -> list[FieldError]:
    """The ``cli_invocation`` checks beyond the common ones: what the consumer relies on.

    ``properties.invocation.command`` must be a non-empty string (its lower-cased value is
    the command group), ``properties.startedAt`` an ISO-8601 date-time when present, and
    ``properties.id`` (the default ``insert_id``) a non-empty string of at most 100
    characters when it is used. Every other property is kept as sent.
    """
    properties = event.get("properties")
    if not isinstance(properties, Mapping):
        return [FieldError("properties", "must be an object")]
    errors = []
    invocation = properties.get("invocation")
    if not isinstance(invocation, Mapping):
        errors.append(FieldError("properties.invocation", "must be an object"))
    else:
        command = invocation.get("command")
        if not _is_short_text(command, MAX_COMMAND_LENGTH):
            errors.append(
                FieldError(
                    "properties.invocation.command",
                    f"must be a non-empty string of at most {MAX_COMMAND_LENGTH} characters",
                )
            )
    started_at = properties.get("startedAt")
    if started_at is not None and parse_timestamp(started_at) is None:
        errors.append(FieldError("properties.startedAt", "must be an ISO-8601 date-time"))
    event_id = properties.get("id")
    if (
        event.get("insert_id") is None
        and event_id is not None
        and not _is_short_text(event_id, MAX_INSERT_ID_LENGTH)
    ):
        errors.append(
            FieldError(
                "properties.id",
                f"must be a non-empty string of at most {MAX_INSERT_ID_LENGTH} characters",
            )
        )
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
    default_insert_id: Callable[[Mapping[str, Any], ApiKey], str | None] | None = None


# The contract for the two known types holds even before (or without) their registration:
# ``cli_invocation`` is validated here, and ``award`` always needs the ``award`` scope.
_BUILTIN = {
    CLI_INVOCATION: _Handling(
        scope=ApiKey.SCOPE_INGEST,
        validate=cli_invocation_validate,
        default_insert_id=cli_invocation_default_insert_id,
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
        default_insert_id=registered.default_insert_id or builtin.default_insert_id,
    )


def _events_of(payload: Any) -> list[Any]:
    if not isinstance(payload, dict):
        raise _request_error(
            "invalid_events", "body", 'must be an event object or {"events": [...]}'
        )
    if "events" not in payload:
        return [payload]
    events = payload["events"]
    limit = settings.INGEST_MAX_EVENTS
    if not isinstance(events, list):
        raise _request_error("invalid_events", "events", "must be a list of events")
    if not 1 <= len(events) <= limit:
        raise _request_error(
            "invalid_events", "events", f"must hold 1 to {limit} events, got {len(events)}"
        )
    return events


_Row = tuple[str, str, str, datetime, dict[str, Any]]


def _events_validate(
    *, api_key: ApiKey, events: list[Any], now: datetime, text_checked: bool
) -> list[_Row]:
    """Validate every event and check conflicts; return the rows to store, in order.

    Raises ``IngestRejected`` 403 for the first event whose type needs a scope the key
    lacks (that event is not validated further), else 400 listing every invalid field.
    """
    handlings: dict[str, _Handling] = {}
    errors: list[dict[str, Any]] = []
    forbidden: dict[str, Any] | None = None
    rows: list[_Row] = []
    conflict_checks: dict[str, list[Mapping[str, Any]]] = {}
    name_message = f"must be a non-empty string of at most {MAX_NAME_LENGTH} characters"
    insert_id_message = f"must be a non-empty string of at most {MAX_INSERT_ID_LENGTH} characters"

    for index, event in enumerate(events):
        if not isinstance(event, dict):
            errors.append({"index": index, "field": "events", "message": "must be an object"})
            continue
        first_error = len(errors)

        def error(field: str, message: str, index: int = index) -> None:
            errors.append({"index": index, "field": field, "message": message})

        if not text_checked:
            for count, field in enumerate(_unstorable_fields(event)):
                if count == MAX_TEXT_ERRORS_PER_EVENT:
                    break
                error(field, "must not contain NUL or unpaired surrogate characters")
            if len(errors) > first_error:
                # Type checks may query with these strings; PostgreSQL would refuse them.
                continue

        name = event.get("event")
        name_ok = _is_short_text(name, MAX_NAME_LENGTH)
        if not name_ok:
            error("event", name_message)
        distinct_id = event.get("distinct_id")
        if not _is_short_text(distinct_id, MAX_NAME_LENGTH):
            error("distinct_id", name_message)
        insert_id = event.get("insert_id")
        if insert_id is not None and not _is_short_text(insert_id, MAX_INSERT_ID_LENGTH):
            error("insert_id", insert_id_message)
        timestamp = event.get("timestamp")
        if timestamp is None:
            timestamp = now
        else:
            timestamp = parse_timestamp(timestamp)
            if timestamp is None:
                error("timestamp", "must be an ISO-8601 date-time")
        properties = event.get("properties")
        if not isinstance(properties, dict):
            error("properties", "is required" if properties is None else "must be an object")
        if not name_ok:
            continue

        handling = handlings.get(name)
        if handling is None:
            handling = handlings[name] = _handling(name)
        if handling.scope not in api_key.scopes:
            if forbidden is None:
                forbidden = {
                    "error": "forbidden",
                    "index": index,
                    "field": "event",
                    "scope": handling.scope,
                    "message": f"this API key lacks the {handling.scope!r} scope "
                    f"that {name!r} events need",
                }
            continue
        if handling.validate is not None and isinstance(properties, dict):
            for field_error in handling.validate(event, api_key):
                error(field_error.field, field_error.message)
        if len(errors) > first_error:
            continue
        if insert_id is None:
            if handling.default_insert_id is not None:
                insert_id = handling.default_insert_id(event, api_key)
            if not _is_short_text(insert_id, MAX_INSERT_ID_LENGTH):
                hint = " (or properties.id)" if handling.default_insert_id else ""
                error("insert_id", f"is required{hint}: {insert_id_message}")
                continue
        rows.append((insert_id, name, distinct_id, timestamp, properties))
        if handling.conflict is not None:
            conflict_checks.setdefault(name, []).append(event)

    if forbidden is not None:
        raise IngestRejected(403, forbidden)
    if errors:
        raise IngestRejected(400, {"error": "invalid_events", "errors": errors})
    for name, checked in conflict_checks.items():
        conflict = handlings[name].conflict
        message = conflict(checked, api_key) if conflict else None
        if message:
            raise IngestRejected(409, {"error": "conflict", "event": name, "message": message})
    return rows


# --- 3. Storage -------------------------------------------------------------------------------


def _insert_sql() -> tuple[str, str]:
    meta = TelemetryEvent._meta
    qn = connection.ops.quote_name
    columns = ", ".join(
        qn(meta.get_field(name).column)
        for name in (
            "insert_id",
            "event",
            "distinct_id",
            "timestamp",
            "properties",
            "api_key",
            "member",
            "received_at",
            "status",
            "error",
        )
    )
    return qn(meta.db_table), columns


def _events_insert(*, api_key: ApiKey, rows: list[_Row], now: datetime) -> int:
    """Insert ``rows`` in one statement, skipping known insert_ids; return how many were new."""
    table, columns = _insert_sql()
    insert_id_column = connection.ops.quote_name("insert_id")
    constants = [api_key.pk, api_key.owner_id, now, TelemetryEvent.Status.PENDING, ""]
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    if connection.vendor == "postgresql":
        # Five parallel arrays, unnested in request order: one round trip for up to 1000
        # events, however many there are.
        sql = (
            # Identifiers come from the model and are quoted; every value is a parameter.
            f"INSERT INTO {table} ({columns}) "  # noqa: S608
            "SELECT r.i, r.e, r.d, r.t, r.p::jsonb, %s, %s, %s, %s, %s "
            "FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[], %s::timestamptz[], "
            "%s::text[]) WITH ORDINALITY AS r(i, e, d, t, p, n) "
            f"ORDER BY r.n ON CONFLICT ({insert_id_column}) DO NOTHING "
            f"RETURNING {insert_id_column}"
        )
        params = [
            *constants,
            [row[0] for row in rows],
            [row[1] for row in rows],
            [row[2] for row in rows],
            [row[3] for row in rows],
            [dumps(row[4]) for row in rows],
        ]
    else:
        # SQLite: the rows travel as one JSON array, unpacked by json_each in order.
        # ``WHERE true`` resolves SQLite's parsing ambiguity between an upsert's ON CONFLICT
        # and a join constraint after INSERT ... SELECT.
        adapt = connection.ops.adapt_datetimefield_value
        constants[2] = adapt(now)
        sql = (
            # Identifiers come from the model and are quoted; every value is a parameter.
            f"INSERT INTO {table} ({columns}) "  # noqa: S608
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
            "json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
            "json_extract(value, '$[4]'), %s, %s, %s, %s, %s "
            "FROM json_each(%s) WHERE true ORDER BY key "
            f"ON CONFLICT ({insert_id_column}) DO NOTHING RETURNING {insert_id_column}"
        )
        params = [*constants, dumps([[i, e, d, adapt(t), p] for i, e, d, t, p in rows])]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return len(cursor.fetchall())


@transaction.atomic
def events_ingest(*, api_key: ApiKey, payload: Any, text_checked: bool = False) -> IngestResult:
    """Validate and store one ingest request's events for ``api_key``'s owner.

    ``payload`` is one event object or ``{"events": [...]}`` (1..``INGEST_MAX_EVENTS``).
    ``text_checked`` skips the scan for unstorable characters when the caller already
    proved there are none (``ingest_request_parse`` does so from the raw body).

    Guarantees: all-or-nothing — any invalid event raises ``IngestRejected`` (400 with
    every error, 403 for a missing scope, 409 for a conflict with stored state) and nothing
    is stored; otherwise every new event is stored pending with one INSERT, and
    ``insert_id`` values already stored (or repeated within the request) are counted as
    duplicates and never stored twice. The member is always the key's owner, whatever
    ``distinct_id`` or the properties say. After commit the consumer is woken (a broker
    outage never fails the request). Database errors propagate.
    """
    events = _events_of(payload)
    now = timezone.now()
    rows = _events_validate(api_key=api_key, events=events, now=now, text_checked=text_checked)
    unique: dict[str, _Row] = {}
    for row in rows:
        unique.setdefault(row[0], row)
    accepted = _events_insert(api_key=api_key, rows=list(unique.values()), now=now)
    if accepted:
        consumer_wake()
    return IngestResult(accepted=accepted, duplicates=len(rows) - accepted)
