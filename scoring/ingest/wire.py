"""The swamp CLI's wire format (SPEC §4) as compiled ``msgspec`` types: the one source.

These Structs mirror the types of the CLI's HTTP telemetry sender. They are used three ways,
so the validator, the drift counter and ``/api/schema`` cannot disagree:

- the **strict** fields — what the pipeline reads (``invocation.command``, ``startedAt``,
  ``id``) — are named in ``STRICT_FIELDS``; ingest refuses an event whose strict fields are
  wrong (``cli_invocation.cli_invocation_validate``);
- every other field is **lenient**: stored as sent whatever its type, and when its type
  differs from the one declared here it is counted as *drift* (``cli_invocation_drift``),
  per CLI version, for the staff dashboard;
- ``scoring/openapi.py`` generates the ``/ingest`` components from them
  (``openapi_components``): strict fields with their type, lenient ones with their expected
  type *or anything*, unknown properties allowed everywhere.

Adding a field the CLI started sending: add it to the Struct below (optional, with
``UNSET`` as default); ``docs/ingest.md`` has the walk-through.
"""

from functools import cache
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from scoring.ingest.cli_invocation import MAX_COMMAND_LENGTH

# Unknown fields are allowed everywhere (msgspec ignores them by default); every field is
# optional here, so a missing field is never drift: presence of what the pipeline needs is
# the validator's job.


# Field names are the wire's own (camelCase).


class Invocation(msgspec.Struct, kw_only=True):
    """``properties.invocation``: what was run."""

    command: str | UnsetType = UNSET
    subcommand: str | UnsetType = UNSET
    args: list[str] | UnsetType = UNSET
    optionKeys: list[str] | UnsetType = UNSET
    globalOptions: list[str] | UnsetType = UNSET


class Result(msgspec.Struct, kw_only=True):
    """``properties.result``: how it ended."""

    status: Literal["success", "error", "user_error"] | UnsetType = UNSET
    exitCode: int | UnsetType = UNSET
    errorType: str | UnsetType = UNSET
    errorMessage: str | UnsetType = UNSET


class InvocationContext(msgspec.Struct, kw_only=True):
    """``properties.invocationContext``: the environment the CLI ran in."""

    configuredAiTools: list[str] | UnsetType = UNSET
    detectedAiTool: str | UnsetType = UNSET
    agentSessionDetected: bool | UnsetType = UNSET
    isInteractive: bool | UnsetType = UNSET
    externalDatastoreConfigured: bool | UnsetType = UNSET


class WorkflowContext(msgspec.Struct, kw_only=True):
    """``properties.workflowContext``: the workflow step a child invocation ran for."""

    workflowName: str | UnsetType = UNSET
    runId: str | UnsetType = UNSET
    jobName: str | UnsetType = UNSET
    stepName: str | UnsetType = UNSET
    modelType: str | UnsetType = UNSET
    executor: str | UnsetType = UNSET


class CliInvocationProperties(msgspec.Struct, kw_only=True):
    """The ``properties`` of a ``cli_invocation`` entry."""

    id: str | UnsetType = UNSET
    invocation: Invocation | UnsetType = UNSET
    result: Result | UnsetType = UNSET
    startedAt: str | UnsetType = UNSET  # ISO-8601
    completedAt: str | UnsetType = UNSET  # ISO-8601
    durationMs: float | UnsetType = UNSET
    swampVersion: str | UnsetType = UNSET
    denoVersion: str | UnsetType = UNSET
    platform: str | UnsetType = UNSET
    invocationContext: InvocationContext | UnsetType = UNSET
    parentInvocationId: str | UnsetType = UNSET
    workflowContext: WorkflowContext | UnsetType = UNSET
    triggerSource: Literal["schedule", "webhook", "api"] | UnsetType = UNSET
    initiatedBy: str | UnsetType = UNSET
    repo_id: str | UnsetType = msgspec.field(name="$repo_id", default=UNSET)


# One character that is not whitespace as Python's ``str.isspace`` (what ingest's "not
# blank" checks use) sees it, spelled for any regex dialect: ECMA's ``\S`` (JSON Schema's)
# differs on U+001C..U+001F, U+0085 and U+FEFF.
NONBLANK = (
    "[^\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
)

# What the pipeline reads, validated strictly at ingest (dotted paths under ``properties``);
# they are required in the schema and never counted as drift (a wrong one is a 400).
STRICT_FIELDS = ("invocation.command", "startedAt", "id")
REQUIRED_FIELDS = ("invocation", "invocation.command", "startedAt")
# ``id`` is strict only when the event has no ``insert_id``: the event-level schema says so
# (``scoring/openapi.py``), so within ``properties`` it is described as lenient.
_SCHEMA_STRICT = ("invocation.command", "startedAt")
# Descriptions for the schema, by dotted path.
_DESCRIPTIONS = {
    "id": "A UUID; the default ``insert_id``.",
    "invocation.command": "The command group (compared lower-cased).",
    "startedAt": "When the invocation started; its UTC date is the activity date.",
    "invocation.globalOptions": 'Global flags as given, e.g. ``["--json", "--verbose"]``.',
    "parentInvocationId": "The id of the workflow run that spawned this invocation.",
    "triggerSource": "Set by ``swamp serve``.",
}


@cache
def _fields(struct: type[msgspec.Struct]) -> tuple[tuple[str, Any, type | None], ...]:
    """``(wire name, type, nested Struct or None)`` for each field of ``struct``."""
    out = []
    for info in msgspec.structs.fields(struct):
        nested = next(
            (
                arg
                for arg in getattr(info.type, "__args__", ())
                if isinstance(arg, type) and issubclass(arg, msgspec.Struct)
            ),
            None,
        )
        out.append((info.encode_name, info.type, nested))
    return tuple(out)


def _drifted(value: Any, struct: type[msgspec.Struct], prefix: str, out: list[str]) -> None:
    """Append the dotted path of each field of ``value`` whose type differs from ``struct``."""
    if type(value) is not dict:
        out.append(prefix.rstrip(".") or "properties")
        return
    for name, field_type, nested in _fields(struct):
        if name not in value:
            continue
        path = prefix + name
        if nested is not None:
            _drifted(value[name], nested, path + ".", out)
            continue
        try:
            msgspec.convert(value[name], field_type)
        except msgspec.ValidationError:
            out.append(path)


def cli_invocation_drift(properties: dict[str, Any]) -> list[str] | None:
    """The known fields of ``properties`` whose type differs from the CLI's, or None.

    One compiled conversion in the common case (everything as declared); only a drifted
    entry is walked field by field to name every drifted field. The strict fields are left
    out: ingest has already refused the event if they were wrong.
    """
    try:
        msgspec.convert(properties, CliInvocationProperties)
    except msgspec.ValidationError:
        drifted: list[str] = []
        _drifted(properties, CliInvocationProperties, "", drifted)
        drifted = [path for path in drifted if path not in STRICT_FIELDS]
        return drifted or None
    return None


# --- OpenAPI ----------------------------------------------------------------------------------


def _lenient(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema of a lenient field: its expected type, or any value (counted as drift)."""
    return {
        "description": (
            _DESCRIPTIONS.get(path, "")
            + " Expected as the first alternative; any other value is accepted, stored as "
            "sent and counted as drift."
        ).strip(),
        "anyOf": [schema, {}],
    }


def _rewrite(schema: dict[str, Any], components: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Turn msgspec's schema of one Struct into the wire schema (see module docstring)."""
    properties = {}
    for name, field_schema in schema.get("properties", {}).items():
        path = prefix + name
        field_schema = {k: v for k, v in field_schema.items() if k != "default"}
        if "$ref" in field_schema:
            nested_name = field_schema["$ref"].rsplit("/", 1)[-1]
            nested = _rewrite(components[nested_name], components, path + ".")
            properties[name] = nested if path in REQUIRED_FIELDS else _lenient(nested, path)
        elif path in _SCHEMA_STRICT:
            properties[name] = {**field_schema, **_strict_extra(path)}
        else:
            properties[name] = _lenient(field_schema, path)
    required = [name for name in properties if prefix + name in REQUIRED_FIELDS]
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    out["additionalProperties"] = True
    if schema.get("description"):
        out["description"] = schema["description"]
    return out


def _strict_extra(path: str) -> dict[str, Any]:
    extra: dict[str, Any] = {"description": _DESCRIPTIONS[path]}
    if path == "invocation.command":
        extra.update(minLength=1, maxLength=MAX_COMMAND_LENGTH, pattern=NONBLANK)
    elif path == "startedAt":
        extra.update(format="date-time")
    return extra


def openapi_cli_invocation_properties() -> dict[str, Any]:
    """The JSON Schema of a ``cli_invocation``'s ``properties``, generated from the Structs."""
    (_, components) = msgspec.json.schema_components(
        [CliInvocationProperties], ref_template="{name}"
    )
    return _rewrite(components["CliInvocationProperties"], components, "")
