"""Conflicts with stored state (409): which keys a request locks and the types' checks.

An event type with a ``conflict`` hook (``award``) names what its events could conflict
over (``conflict_keys``). The request's events of such types are checked in the storing
transaction, after locking those keys, so two concurrent requests naming one key are
checked one after the other and the later one sees the earlier one's events.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scoring.ingest.handling import EventHandling
from scoring.ingest.rejections import IngestRejected
from scoring.models import ApiKey
from swampclub.dialect import advisory_xact_locks


@dataclass(frozen=True)
class ConflictCheck:
    """A request's valid events of one type that has a ``conflict`` hook, to check later."""

    name: str
    events: list[Mapping[str, Any]]
    handling: EventHandling


def conflict_lock_keys(checks: Sequence[ConflictCheck], api_key: ApiKey) -> list[str]:
    """The sorted, distinct lock names (``<event>:<key>``) the checks' types declare."""
    keys: set[str] = set()
    for check in checks:
        if check.handling.conflict_keys is not None:
            keys.update(
                f"{check.name}:{key}" for key in check.handling.conflict_keys(check.events, api_key)
            )
    # One order for every request, so two requests locking overlapping keys never deadlock.
    return sorted(keys)


def conflict_keys_lock(keys: list[str]) -> None:
    """Hold a lock on each of ``keys`` (sorted) until the current transaction ends.

    A concurrent request naming one of them waits for this transaction to commit or roll
    back; its next statements (READ COMMITTED) then see what this one stored. On SQLite the
    transaction's ``BEGIN IMMEDIATE`` already holds the database's single write lock
    (``swampclub.dialect.advisory_xact_locks``).
    """
    advisory_xact_locks(keys)


def conflicts_check(checks: Sequence[ConflictCheck], api_key: ApiKey) -> None:
    """Run each type's conflict check; ``IngestRejected`` 409 on the first objection."""
    for check in checks:
        conflict = check.handling.conflict
        message = conflict(check.events, api_key) if conflict else None
        if message:
            raise IngestRejected(
                409, {"error": "conflict", "event": check.name, "message": message}
            )
