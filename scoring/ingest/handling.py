"""How ingest treats each event type: its scope, checks, conflict hooks and drift counter.

The registry (``scoring.registry``) holds what apps register; the contract for the two
known types holds even before (or without) their registration: ``cli_invocation`` is
validated by ingest's own rules, and ``award`` always needs the ``award`` scope.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scoring.ingest.cli_invocation import (
    CLI_INVOCATION,
    cli_invocation_default_insert_id,
    cli_invocation_validate,
)
from scoring.ingest.wire import cli_invocation_drift
from scoring.models import ApiKey
from scoring.registry import FieldError, event_type_get

AWARD = "award"


@dataclass(frozen=True)
class EventHandling:
    """How ingest treats one event type: the registry's entry over the built-in rules."""

    scope: str
    validate: Callable[[Mapping[str, Any], ApiKey], list[FieldError]] | None = None
    conflict: Callable[[Sequence[Mapping[str, Any]], ApiKey], str | None] | None = None
    conflict_keys: Callable[[Sequence[Mapping[str, Any]], ApiKey], Iterable[str]] | None = None
    default_insert_id: Callable[[Mapping[str, Any], ApiKey], str | None] | None = None
    # The known fields of a valid event's properties whose type differs from the client's
    # (``wire``); stored with the event and counted per client version for staff.
    drift: Callable[[dict[str, Any]], list[str] | None] | None = None


_BUILTIN = {
    CLI_INVOCATION: EventHandling(
        scope=ApiKey.SCOPE_INGEST,
        validate=cli_invocation_validate,
        default_insert_id=cli_invocation_default_insert_id,
        drift=cli_invocation_drift,
    ),
    AWARD: EventHandling(scope=ApiKey.SCOPE_AWARD),
}
_UNREGISTERED = EventHandling(scope=ApiKey.SCOPE_INGEST)


def event_handling(name: str) -> EventHandling:
    """How ingest treats events named ``name`` now (the registry is read on each call)."""
    builtin = _BUILTIN.get(name, _UNREGISTERED)
    registered = event_type_get(name)
    if registered is None:
        return builtin
    return EventHandling(
        scope=registered.scope,
        validate=registered.validate or builtin.validate,
        conflict=registered.conflict,
        conflict_keys=registered.conflict_keys,
        default_insert_id=registered.default_insert_id or builtin.default_insert_id,
        drift=builtin.drift,
    )


def cli_invocation_handling_is_builtin(handling: EventHandling) -> bool:
    """True when ``cli_invocation`` events are handled by ingest's own rules alone, so the
    typed batch path (which applies exactly those rules) may stand in for the generic one."""
    return (
        handling.validate is cli_invocation_validate
        and handling.default_insert_id is cli_invocation_default_insert_id
        and handling.conflict is None
        and handling.conflict_keys is None
        and handling.drift is cli_invocation_drift
    )
