"""The ``cli_invocation`` rules: only what the pipeline reads is checked (SPEC §4).

``properties.invocation.command`` (the command group), ``properties.startedAt`` (the
activity date) and, without an ``insert_id``, ``properties.id`` (the deduplication key).
Every other property is stored as sent; its type is only compared with the wire format's
for drift (``scoring.ingest.wire``). The typed path for whole well-typed batches applies
the same rules (``scoring.ingest.cli_batch``).
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from scoring.ingest.envelope import (
    INSERT_ID_MESSAGE,
    MAX_INSERT_ID_LENGTH,
    TIME_MESSAGE,
    future_limit,
    future_message,
    is_short_text,
    parse_timestamp,
    request_future_limit,
)
from scoring.models import ApiKey
from scoring.registry import FieldError

CLI_INVOCATION = "cli_invocation"
MAX_COMMAND_LENGTH = 100
COMMAND_MESSAGE = f"must be a non-empty string of at most {MAX_COMMAND_LENGTH} characters"


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
    elif not is_short_text(invocation.get("command"), MAX_COMMAND_LENGTH):
        errors.append(FieldError("properties.invocation.command", COMMAND_MESSAGE))
    started_at = parse_timestamp(properties.get("startedAt"))
    if started_at is None:
        errors.append(FieldError("properties.startedAt", TIME_MESSAGE))
    elif started_at > (request_future_limit.get() or future_limit(datetime.now(UTC))):
        errors.append(FieldError("properties.startedAt", future_message()))
    event_id = properties.get("id")
    if (
        event.get("insert_id") is None
        and event_id is not None
        and not is_short_text(event_id, MAX_INSERT_ID_LENGTH)
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
