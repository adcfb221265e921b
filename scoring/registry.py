"""The event-type registry: how ingest validates and the consumer processes each event type.

``scoring`` never imports ``awards``; the awards app registers the ``award`` type from its
``AppConfig.ready``. Event types nobody registered are accepted with the ``ingest`` scope and
rejected by the consumer with a reason (they never block the queue).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.models import ApiKey, TelemetryEvent


@dataclass(frozen=True)
class FieldError:
    """One validation error: the dotted field path and a human message."""

    field: str
    message: str


@dataclass
class HandleResult:
    """What a handler did with a batch: rejected events (id → reason), touched members, and
    late events (processed, not counted: older than ``TELEMETRY_MAX_AGE_DAYS``)."""

    rejected: dict[int, str] = field(default_factory=dict)
    touched_member_ids: set[int] = field(default_factory=set)
    late: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class EventType:
    """How one event type is ingested and consumed.

    - ``scope``: the API key scope needed to send it (403 otherwise, nothing stored).
    - ``validate(event, api_key)``: shape/business checks at ingest → list of FieldError.
    - ``conflict(events, api_key)``: checks against stored state for a whole request (e.g. an
      award key reused with a different payload) → a message for a 409, or None.
    - ``conflict_keys(events, api_key)``: what those events could conflict over (for an
      award: recipient and key), as strings. Ingest runs ``conflict`` and stores the request
      in one transaction holding a lock on each (PostgreSQL advisory locks), so concurrent
      requests naming the same key are checked one after the other and the later one sees
      the earlier one's events. Without it, ``conflict`` can miss a concurrent request.
    - ``default_insert_id(event, api_key)``: the insert_id when the event has none.
    - ``admit(indexed_events, api_key)``: runs in the storing transaction, after ``conflict``
      and before the insert, with ``(index in the request, event)`` pairs of this type; may
      refuse the whole request by raising ``IngestRejected`` (e.g. 422 over an award
      budget) and returns extra counters for the 202 body (e.g. ``pending_approval``).
    - ``handle(events)``: called by the consumer inside its batch transaction with this
      type's claimed events; returns a HandleResult. Must be set-based and idempotent.
    """

    name: str
    scope: str
    handle: Callable[[Sequence["TelemetryEvent"]], HandleResult]
    validate: Callable[[Mapping[str, Any], "ApiKey"], list[FieldError]] | None = None
    conflict: Callable[[Sequence[Mapping[str, Any]], "ApiKey"], str | None] | None = None
    conflict_keys: Callable[[Sequence[Mapping[str, Any]], "ApiKey"], Iterable[str]] | None = None
    default_insert_id: Callable[[Mapping[str, Any], "ApiKey"], str | None] | None = None
    admit: (
        Callable[[Sequence[tuple[int, Mapping[str, Any]]], "ApiKey"], Mapping[str, int]] | None
    ) = None


_registry: dict[str, EventType] = {}


def event_type_register(event_type: EventType) -> None:
    """Register (or replace) the handling of one event type."""
    _registry[event_type.name] = event_type


def event_type_get(name: str) -> EventType | None:
    """The registered handling of ``name``, or None for an unknown type."""
    return _registry.get(name)


def event_types() -> Mapping[str, EventType]:
    """Every registered event type, by name."""
    return dict(_registry)


# --- check_ledger: each app registers the invariants it owns ---------------------------------

LedgerCheck = Callable[[], list[str]]
_ledger_checks: dict[str, LedgerCheck] = {}


def ledger_check_register(name: str, check: LedgerCheck) -> None:
    """Register an invariant check for ``check_ledger``; it returns mismatch descriptions."""
    _ledger_checks[name] = check


def ledger_checks() -> Mapping[str, LedgerCheck]:
    """Every registered ledger check, by name."""
    return dict(_ledger_checks)
