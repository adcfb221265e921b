"""The typed path: a whole well-typed ``cli_invocation`` request decoded in one call.

The swamp CLI's requests are almost always exactly the wire format: ``cli_invocation``
entries holding only the known fields, each of its declared type. Such a body is decoded by
one compiled ``msgspec.json.decode`` into Structs generated from the wire format's
(``scoring.ingest.wire``), with no Python dict per event and no generic field loop; a short
loop then applies the rules the pipeline needs (``cli_invocation``: command, ``startedAt``,
the dedup id, the common fields and the time rules).

The typed Structs are stricter than the wire format, so that a body they accept is one the
generic path would accept with the same rows and no drift: unknown fields are refused at
every level (they could hide nesting, numbers or text the generic path refuses), the strict
fields are required, and ``durationMs`` must be an integer (a float literal could underflow
or carry a mantissa the generic path refuses). Any body the typed path does not accept —
an unknown field, drift, another event type, an invalid field — goes the generic way
(``events.events_validate``), which gives every answer exactly as before, errors included.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Union, get_args

import msgspec
from msgspec import UNSET, UnsetType

from scoring.ingest.cli_invocation import CLI_INVOCATION, MAX_COMMAND_LENGTH
from scoring.ingest.envelope import (
    MAX_INSERT_ID_LENGTH,
    MAX_NAME_LENGTH,
    Row,
    parse_timestamp,
)
from scoring.ingest.wire import REQUIRED_FIELDS, CliInvocationProperties


def _typed_twin(struct: type[msgspec.Struct], prefix: str = "") -> type[msgspec.Struct]:
    """A Struct like ``struct`` (and its nested Structs) that refuses unknown fields, requires
    the fields in ``REQUIRED_FIELDS`` and takes integers where ``struct`` takes floats."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename = {}
    for info in msgspec.structs.fields(struct):
        path = prefix + info.encode_name
        args = []
        for arg in get_args(info.type) or (info.type,):
            if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                arg = _typed_twin(arg, path + ".")
            elif arg is float:
                arg = int
            if not (arg is UnsetType and path in REQUIRED_FIELDS):
                args.append(arg)
        field_type: Any = Union[tuple(args)]  # noqa: UP007 - Literal alternatives need Union
        if path in REQUIRED_FIELDS:
            fields.append((info.name, field_type))
        else:
            fields.append((info.name, field_type, UNSET))
        if info.encode_name != info.name:
            rename[info.name] = info.encode_name
    return msgspec.defstruct(
        f"Typed{struct.__name__}",
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        rename=rename or None,
        gc=False,
    )


TypedProperties: Any = _typed_twin(CliInvocationProperties)


class TypedEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A ``cli_invocation`` entry holding only the envelope's fields and known properties."""

    event: Literal["cli_invocation"]
    distinct_id: str
    insert_id: str | UnsetType = UNSET
    timestamp: str | UnsetType = UNSET
    properties: TypedProperties


class TypedBatch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """``{"events": [...]}`` holding only typed entries."""

    events: list[TypedEntry]


_batch_decoder = msgspec.json.Decoder(TypedBatch)
_entry_decoder = msgspec.json.Decoder(TypedEntry)


@dataclass(frozen=True)
class CliBatch:
    """A body decoded by the typed path: its entries and whether it was a batch object."""

    entries: list[TypedEntry]
    batch: bool


def cli_batch_decode(body: bytes | str) -> CliBatch | None:
    """``body`` decoded into typed entries, or None when it is not a well-typed
    ``cli_invocation`` request (the caller then takes the generic path).

    The caller has checked that the body is UTF-8 and holds no escape of a character
    PostgreSQL cannot store; the typed Structs bound its nesting and numbers.
    """
    try:
        return CliBatch(_batch_decoder.decode(body).events, True)
    except msgspec.DecodeError:  # ValidationError included
        pass
    try:
        return CliBatch([_entry_decoder.decode(body)], False)
    except msgspec.DecodeError:
        return None


def cli_batch_rows(
    batch: CliBatch, *, now: datetime, latest: datetime, max_events: int
) -> list[Row] | None:
    """The rows of a typed body, or None when one of its entries breaks a rule (the
    generic path then names every error).

    The rules are those of the generic path for a ``cli_invocation`` entry: ``distinct_id``,
    ``invocation.command`` and the dedup id (``insert_id``, else ``properties.id``)
    non-empty, not blank and short enough; ``startedAt`` and ``timestamp`` ISO-8601 and at
    most ``latest``; a missing ``timestamp`` is the ``startedAt``. No row has drift (every
    known field has its declared type) and none carries its properties: the store takes
    them from the request's text.
    """
    entries = batch.entries
    if not 1 <= len(entries) <= max_events:
        return None
    rows: list[Row] = []
    append = rows.append
    for entry in entries:
        properties: Any = entry.properties
        insert_id: Any = entry.insert_id
        if insert_id is UNSET:
            insert_id = properties.id
            if insert_id is UNSET:
                return None
        distinct_id = entry.distinct_id
        command = properties.invocation.command
        # ``is_short_text`` spelled out for the three strings the Structs typed as str.
        if not (
            0 < len(insert_id) <= MAX_INSERT_ID_LENGTH
            and 0 < len(distinct_id) <= MAX_NAME_LENGTH
            and 0 < len(command) <= MAX_COMMAND_LENGTH
        ) or (insert_id.isspace() or distinct_id.isspace() or command.isspace()):
            return None
        started_at = parse_timestamp(properties.startedAt)
        if started_at is None or started_at > latest:
            return None
        # No ``timestamp``: the event's own time, its ``startedAt`` (``scoring.ingest.store``).
        timestamp = started_at
        if entry.timestamp is not UNSET:
            sent_at = parse_timestamp(entry.timestamp)
            if sent_at is None or sent_at > latest:
                return None
            timestamp = sent_at
        append((insert_id, CLI_INVOCATION, distinct_id, timestamp, None, None))
    return rows
