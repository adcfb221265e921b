"""Telemetry ingest (SPEC §4): read the request body, validate every event, store them at once.

A request is handled in three steps, each of which may refuse it with an
``IngestRejected`` carrying the HTTP answer:

1. ``ingest_request_parse`` (``body``) — Content-Type (415), size (413), UTF-8 and JSON
   (400), nesting depth (400), and a scan of the text for escapes PostgreSQL cannot store.
2. ``events_validate`` (``events``) — the shape of the body and of every event (400, all
   errors at once), the scope each event type needs (403) and the event types' own checks
   (400).
3. ``events_insert`` (``store``) — on PostgreSQL, for a batch, one look-up of the stored
   keys and one ``COPY`` of the new rows; otherwise (or when a concurrent resend wins the
   race) one set-based ``INSERT ... ON CONFLICT (insert_id, timestamp) DO NOTHING`` for
   the whole request; known ``insert_id`` values count as duplicates. When an event type
   has a ``conflict`` hook, its check (409) runs in the same transaction, after locking
   the keys the type names (``conflict_keys_lock``).

Validation is all-or-nothing: one bad event and nothing is stored.
"""

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DataError, connection, transaction
from django.utils import timezone

from scoring.apikeys import api_key_scopes_effective
from scoring.ingest.body import MAX_DEPTH, IngestPayload, ingest_request_parse, payload_data
from scoring.ingest.cli_batch import CliBatch, cli_batch_rows
from scoring.ingest.cli_invocation import (
    CLI_INVOCATION,
    cli_invocation_default_insert_id,
    cli_invocation_validate,
)
from scoring.ingest.conflicts import (
    ConflictCheck,
    conflict_keys_lock,
    conflict_lock_keys,
    conflicts_check,
)
from scoring.ingest.envelope import (
    MAX_INSERT_ID_LENGTH,
    MAX_NAME_LENGTH,
    Row,
    events_of,
    future_limit,
    parse_timestamp,
)
from scoring.ingest.events import events_validate
from scoring.ingest.handling import AWARD, cli_invocation_handling_is_builtin, event_handling
from scoring.ingest.rejections import IngestRejected, request_error
from scoring.ingest.store import events_insert
from scoring.models import ApiKey
from scoring.registry import event_type_get
from scoring.wakeups import consumer_wake

__all__ = [
    "AWARD",
    "CLI_INVOCATION",
    "MAX_DEPTH",
    "MAX_INSERT_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "IngestPayload",
    "IngestRejected",
    "IngestResult",
    "cli_invocation_default_insert_id",
    "cli_invocation_validate",
    "cli_version_from_user_agent",
    "events_ingest",
    "ingest_request_parse",
    "parse_timestamp",
]


@dataclass(frozen=True)
class IngestResult:
    """What one request stored: new events and already-seen ``insert_id`` values."""

    accepted: int
    duplicates: int
    # Counters an event type's ``admit`` hook adds to the 202 body (``pending_approval``).
    extra: dict[str, int] = field(default_factory=dict)


CLI_USER_AGENT_PREFIX = "swamp-cli/"
MAX_CLI_VERSION_LENGTH = 100


def cli_version_from_user_agent(user_agent: str | None) -> str:
    """The version in ``User-Agent: swamp-cli/<version>`` (first product token), else ""."""
    if not user_agent or not user_agent.startswith(CLI_USER_AGENT_PREFIX):
        return ""
    version = user_agent[len(CLI_USER_AGENT_PREFIX) :].split(" ", 1)[0]
    return version[:MAX_CLI_VERSION_LENGTH].replace("\x00", "")


def events_ingest(
    *, api_key: ApiKey, payload: IngestPayload | Any, cli_version: str = ""
) -> IngestResult:
    """Validate and store one ingest request's events for ``api_key``'s owner.

    ``payload`` is the parsed request (``ingest_request_parse``) or a decoded JSON value:
    one event object or ``{"events": [...]}`` with 1..``INGEST_MAX_EVENTS`` events.
    ``cli_version`` (``cli_version_from_user_agent``) is stored with each event, so drift
    in the client's wire format is counted per version.

    Guarantees: all-or-nothing — any invalid event raises ``IngestRejected`` (400 with
    every error, 403 for a missing scope, 409 for a conflict with stored state) and nothing
    is stored; otherwise every new event is stored pending (one COPY or one INSERT), and
    ``insert_id`` values already stored (or repeated within the request) are counted as
    duplicates and never stored twice. The member is always the key's owner, whatever
    ``distinct_id`` or the properties say. After commit the consumer is woken (a broker
    outage never fails the request). Connection errors propagate; a value the database
    still refuses (e.g. a number beyond PostgreSQL's numeric range) is a 400.

    Storage is a single statement (the COPY or the INSERT), atomic by itself, so outside a
    transaction it runs in autocommit (no BEGIN/COMMIT round trips on the hot path); inside
    a caller's transaction it runs in a savepoint, so a refused value leaves that
    transaction usable.

    Requests holding events whose type has a ``conflict`` hook (``award``) instead check
    conflicts and insert in one transaction that first locks the keys the type names, so
    of two concurrent requests using one award key with different payloads the later
    waits, sees the earlier's event and answers 409 — never a 202 duplicate.
    """
    now = timezone.now()
    rows: list[Row] | None = None
    checks: list[ConflictCheck] = []
    if isinstance(payload, IngestPayload):
        text, text_checked = payload.text, payload.text_checked
        if payload.cli_batch is not None:
            rows = _cli_batch_rows(payload.cli_batch, api_key, now)
            batch = payload.cli_batch.batch
        data = payload_data(payload) if rows is None else None
    else:
        data, text, text_checked = payload, None, False
    if rows is None:
        rows, checks = events_validate(
            api_key=api_key, payload=data, now=now, text_checked=text_checked
        )
        batch = type(data) is dict and "events" in data
    extra: dict[str, int] = {}
    atomic = bool(checks) or connection.in_atomic_block
    guard = transaction.atomic() if atomic else nullcontext()
    try:
        with guard:
            if checks:
                # Lock, then check, then insert, then commit (which releases the locks): a
                # concurrent request with one of these keys checks only after this commits.
                conflict_keys_lock(conflict_lock_keys(checks, api_key))
                conflicts_check(checks, api_key)
                extra = _admit(checks, api_key, data)
            accepted = events_insert(
                api_key=api_key,
                rows=rows,
                now=now,
                events_json=text,
                batch=batch,
                cli_version=cli_version,
            )
    except DataError as exc:
        raise request_error(
            "invalid_events", "body", f"a value cannot be stored: {str(exc).splitlines()[0]}"
        ) from None
    if accepted:
        consumer_wake()
    return IngestResult(accepted=accepted, duplicates=len(rows) - accepted, extra=extra)


def _cli_batch_rows(cli_batch: CliBatch, api_key: ApiKey, now: datetime) -> list[Row] | None:
    """The typed entries' rows, or None when the generic path must judge the request: an
    entry breaks a rule, the key may not send ``cli_invocation`` events now, or the type's
    registered checks are not ingest's own (the typed path applies exactly those)."""
    handling = event_handling(CLI_INVOCATION)
    if not cli_invocation_handling_is_builtin(handling):
        return None
    if handling.scope not in api_key_scopes_effective(api_key):
        return None
    return cli_batch_rows(
        cli_batch, now=now, latest=future_limit(now), max_events=settings.INGEST_MAX_EVENTS
    )


def _admit(checks: Sequence[ConflictCheck], api_key: ApiKey, data: Any) -> dict[str, int]:
    """Run each checked type's ``admit`` hook with the events' positions in the request."""
    extra: dict[str, int] = {}
    positions: dict[int, int] | None = None
    for check in checks:
        registered = event_type_get(check.name)
        if registered is None or registered.admit is None:
            continue
        if positions is None:
            positions = {id(event): index for index, event in enumerate(events_of(data)[0])}
        indexed = [(positions[id(event)], event) for event in check.events]
        extra.update(registered.admit(indexed, api_key))
    return extra
