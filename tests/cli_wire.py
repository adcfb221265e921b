"""What clients post to ``/ingest``: the CLI's recorded requests and the one home of the
test payload builders.

The recorded requests live in ``tests/fixtures/cli-wire/`` (byte-identical copies of the
shared recordings, so a clean clone has them). Tests that need a CLI payload of their own
build it with ``cli_entry``/``cli_body``/``cli_headers`` (or ``cli_event``/``cli_events``,
the same entry with an explicit ``timestamp``), whose output ``tests/scoring/test_cli_wire.py``
checks against the recordings (same keys, same types), so hand-built payloads cannot drift
from the real client again. ``award_event``/``bot_award_event`` build what an awarding client
(a key with the ``award`` scope) sends, and ``ingest_post`` posts a body as such a client does.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures" / "cli-wire"

CLI_VERSION = "20260822.120000.0-sha.06b61472"
USER_AGENT = f"swamp-cli/{CLI_VERSION}"


def fixture_files(directory: Path = FIXTURES_DIR) -> list[Path]:
    """The recorded request files (``*.json``), sorted by name."""
    return sorted(directory.glob("*.json"))


def fixture_load(path: Path) -> dict[str, Any]:
    """One recorded request: ``{"path", "headers", "body"}``."""
    return json.loads(path.read_text(encoding="utf-8"))


def entries_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a body: the ``events`` of an envelope, else the bare entry."""
    return body.get("events", [body])


def _iso(at: datetime) -> str:
    # The CLI's Date.toISOString(): UTC, milliseconds, "Z".
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def cli_entry(
    *,
    command: str = "model",
    subcommand: str | None = "run",
    args: list[str] | None = None,
    option_keys: list[str] | None = None,
    global_options: list[str] | None = None,
    status: str = "success",
    exit_code: int | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    started_at: datetime | None = None,
    duration_ms: int = 1234,
    entry_id: str | None = None,
    distinct_id: str = "mac-42f1",
    swamp_version: str = CLI_VERSION,
    invocation_context: dict[str, Any] | None = None,
    parent_invocation_id: str | None = None,
    workflow_context: dict[str, Any] | None = None,
    trigger_source: str | None = None,
    initiated_by: str | None = None,
    repo_id: str | None = "9f0c2b1e-3d4a-4c5b-8e6f-7a8b9c0d1e2f",
    **extra_properties: Any,
) -> dict[str, Any]:
    """One ``cli_invocation`` entry exactly as the CLI's HTTP sender builds it.

    Optional parts (``subcommand``, error details, the invocation and workflow contexts,
    ``$repo_id``) are left out when None, as the CLI leaves them out. ``extra_properties``
    are added to ``properties`` as given (a newer CLI's fields, or drifted types).
    """
    entry_id = entry_id or str(uuid.uuid4())
    started_at = started_at or datetime.now(UTC) - timedelta(minutes=1)
    invocation: dict[str, Any] = {
        "command": command,
        "args": list(args or []),
        "optionKeys": list(option_keys or []),
        "globalOptions": list(global_options or []),
    }
    if subcommand is not None:
        invocation["subcommand"] = subcommand
    result: dict[str, Any] = {
        "status": status,
        "exitCode": exit_code if exit_code is not None else (0 if status == "success" else 1),
    }
    if error_type is not None:
        result["errorType"] = error_type
    if error_message is not None:
        result["errorMessage"] = error_message
    properties: dict[str, Any] = {
        "id": entry_id,
        "invocation": invocation,
        "result": result,
        "startedAt": _iso(started_at),
        "completedAt": _iso(started_at + timedelta(milliseconds=duration_ms)),
        "durationMs": duration_ms,
        "swampVersion": swamp_version,
        "denoVersion": "2.4.5",
        "platform": "darwin-aarch64",
    }
    optional = {
        "invocationContext": invocation_context,
        "parentInvocationId": parent_invocation_id,
        "workflowContext": workflow_context,
        "triggerSource": trigger_source,
        "initiatedBy": initiated_by,
        "$repo_id": repo_id,
    }
    properties.update({key: value for key, value in optional.items() if value is not None})
    properties.update(extra_properties)
    return {
        "event": "cli_invocation",
        "distinct_id": distinct_id,
        "insert_id": entry_id,
        "properties": properties,
    }


def cli_body(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The request body the CLI sends: one entry bare, several as ``{"events": [...]}``."""
    return entries[0] if len(entries) == 1 else {"events": entries}


def cli_headers(key: str, *, version: str = CLI_VERSION) -> dict[str, str]:
    """The headers the CLI sends (``Content-Type`` goes as the test client's argument)."""
    return {"x-api-key": key, "User-Agent": f"swamp-cli/{version}"}


def cli_post(client, entries_or_body: Any, key: str, *, version: str = CLI_VERSION):
    """POST a body (or a list of entries, wrapped as the CLI wraps them) as the CLI does."""
    body = cli_body(entries_or_body) if isinstance(entries_or_body, list) else entries_or_body
    return client.post(
        "/ingest",
        data=json.dumps(body),
        content_type="application/json",
        headers=cli_headers(key, version=version),
    )


def cli_event(
    insert_id: str, *, command: str = "model", started_at: datetime | None = None
) -> dict[str, Any]:
    """A valid ``cli_invocation`` entry (``cli_entry``) with ``insert_id`` and a
    ``timestamp`` at its start, so the stored event time is the invocation's."""
    started = started_at or datetime.now(UTC)
    event = cli_entry(command=command, started_at=started, duration_ms=120, entry_id=insert_id)
    event["timestamp"] = _iso(started)
    return event


def cli_events(prefix: str, count: int, *, days: int = 1) -> list[dict[str, Any]]:
    """``count`` events over the last ``days`` days, cycling through four command groups."""
    now = datetime.now(UTC)
    groups = ("model", "workflow", "data", "vault")
    return [
        cli_event(
            f"{prefix}-{n}",
            command=groups[n % len(groups)],
            started_at=now - timedelta(days=n % days, minutes=n % 50),
        )
        for n in range(count)
    ]


def award_event(
    username: Any = "ada",
    *,
    points: Any = 250,
    reason: Any = "Fixed the install docs",
    award_id: str | None = None,
    insert_id: str | None = None,
    timestamp: str | None = None,
    distinct_id: str = "award-bot",
    **properties: Any,
) -> dict[str, Any]:
    """An ``award`` event as an awarding client sends it.

    ``award_id`` is ``properties.awardId``; ``properties`` adds or overrides any other field
    (``category``, ``public``, ``grantedBy``, or a wrong type on purpose). A field given as
    None is left out, as a client leaves out what it does not set.
    """
    props = {"username": username, "points": points, "reason": reason, "awardId": award_id}
    props.update(properties)
    event = {
        "event": "award",
        "distinct_id": distinct_id,
        "timestamp": timestamp,
        "insert_id": insert_id,
        "properties": {k: v for k, v in props.items() if v is not None},
    }
    return {k: v for k, v in event.items() if v is not None}


def bot_award_event(
    *, username: str, points: int, reason: str, award_id: str, insert_id: str | None = None
) -> dict[str, Any]:
    """A complete ``award`` event as the awarding bot sends it: every field set, dated now."""
    return award_event(
        username,
        points=points,
        reason=reason,
        award_id=award_id,
        insert_id=insert_id,
        timestamp=datetime.now(UTC).isoformat(),
        category="community",
        public=True,
        grantedBy="award-bot",
    )


def ingest_post(client, key: str, body: Any, **headers: str):
    """POST ``body`` to ``/ingest`` as JSON with the ``x-api-key`` header, as an API client
    (not the CLI: no CLI user agent) does."""
    return client.post(
        "/ingest",
        data=json.dumps(body),
        content_type="application/json",
        headers={"x-api-key": key, **headers},
    )


def shape(value: Any) -> Any:
    """The keys and JSON types of ``value``, recursively (values themselves dropped).

    An array's shape is the set of its items' shapes (empty for an empty array), so two
    payloads compare equal when they have the same keys with the same types everywhere.
    """
    if isinstance(value, dict):
        return {key: shape(child) for key, child in value.items()}
    if isinstance(value, list):
        return ("array", frozenset(json.dumps(shape(item), sort_keys=True) for item in value))
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return "string"
