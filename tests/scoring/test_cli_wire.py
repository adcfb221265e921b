"""The swamp CLI's real wire format (SPEC §4): recorded requests, posted unchanged, scored.

The recordings in ``tests/fixtures/cli-wire/`` are what the CLI's own HTTP telemetry sender
sent. Every one must be answered 202 and scored exactly; the acceptance rule (only what the
pipeline reads is validated) is checked with unknown fields and drifted types at every level.
"""

import json
from datetime import date

import pytest

from scoring.consumer import events_consume
from scoring.models import TelemetryEvent, UserScore
from scoring.scores import scores_process_batch
from tests.cli_wire import (
    FIXTURES_DIR,
    cli_body,
    cli_entry,
    cli_post,
    entries_of,
    fixture_files,
    fixture_load,
    shape,
)

pytestmark = pytest.mark.django_db

# The recordings' entries all started on 2026-11-28 (UTC).
RECORDED_DAY = date(2026, 11, 28)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _recordings_are_never_late(settings):
    # The recordings keep their dates forever; the age limit is tested in test_ingest_time.
    settings.TELEMETRY_MAX_AGE_DAYS = 100_000


def post_recorded(client, recorded: dict, key: str):
    """POST a recorded request unchanged: its path, body and headers, ``key`` substituted."""
    headers = dict(recorded["headers"])
    content_type = headers.pop("Content-Type")
    headers["x-api-key"] = key
    return client.post(
        recorded["path"],
        data=json.dumps(recorded["body"]),
        content_type=content_type,
        headers=headers,
    )


def run_pipeline(as_of: date = RECORDED_DAY) -> None:
    events_consume()
    scores_process_batch(as_of=as_of)


def activity_of(member) -> int:
    return UserScore.objects.get(member=member).activity_score


def test_the_recordings_are_present():
    names = {path.name for path in fixture_files()}

    assert {"batch-workflow-child-error.json", "single-bare.json"} <= names


@pytest.mark.parametrize("path", fixture_files(), ids=lambda path: path.name)
def test_each_recording_is_accepted_and_scored(client, member, ingest_key, path):
    recorded = fixture_load(path)
    entries = entries_of(recorded["body"])

    response = post_recorded(client, recorded, ingest_key[1])

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": len(entries), "duplicates": 0}
    run_pipeline()
    groups = {entry["properties"]["invocation"]["command"] for entry in entries}
    assert TelemetryEvent.objects.filter(member=member).processed().count() == len(entries)
    # One group per entry in each recording, all on one day: base 10 + diversity 50 per
    # group; streak 1 (*1); one active day of 30 (*61/60).
    assert len(groups) == len(entries)
    assert activity_of(member) == (60 * len(groups)) * 61 // 60


def test_every_recording_together_scores_exactly_and_replays_as_duplicates(
    client, member, ingest_key
):
    recordings = [fixture_load(path) for path in fixture_files()]
    total = sum(len(entries_of(recorded["body"])) for recorded in recordings)

    for recorded in recordings:
        response = post_recorded(client, recorded, ingest_key[1])
        assert response.status_code == 202, response.content
    run_pipeline()

    # workflow, model, vault, version: base 4 * 10 = 40, diversity 4 * 50 = 200; the one
    # active day 2026-11-28: streak 1 (*1), rolling 1 of 30 days (*61/60) → 244.
    assert total == 4
    assert activity_of(member) == 244
    metrics = member.metrics
    assert metrics.event_counts == {"model": 1, "vault": 1, "version": 1, "workflow": 1}
    assert metrics.active_dates == ["2026-11-28"]

    for recorded in recordings:
        response = post_recorded(client, recorded, ingest_key[1])
        entries = entries_of(recorded["body"])
        assert response.status_code == 202
        assert response.json() == {"accepted": 0, "duplicates": len(entries)}
    run_pipeline()
    assert TelemetryEvent.objects.count() == total
    assert activity_of(member) == 244


def test_recorded_properties_are_stored_exactly_as_sent(client, member, ingest_key):
    recorded = fixture_load(FIXTURES_DIR / "batch-workflow-child-error.json")

    post_recorded(client, recorded, ingest_key[1])

    for entry in recorded["body"]["events"]:
        stored = TelemetryEvent.objects.get(insert_id=entry["insert_id"])
        assert stored.properties == entry["properties"]
        assert stored.distinct_id == entry["distinct_id"]


# --- the payload builder matches the recordings --------------------------------------------


def _recorded_entries() -> dict[str, dict]:
    batch = fixture_load(FIXTURES_DIR / "batch-workflow-child-error.json")["body"]["events"]
    bare = fixture_load(FIXTURES_DIR / "single-bare.json")["body"]
    return {"workflow": batch[0], "child": batch[1], "user_error": batch[2], "bare": bare}


def _built_entries() -> dict[str, dict]:
    workflow = cli_entry(
        command="workflow",
        subcommand="run",
        args=["deploy"],
        option_keys=["--input"],
        global_options=["--json"],
        invocation_context={
            "agentSessionDetected": True,
            "isInteractive": False,
            "externalDatastoreConfigured": True,
            "configuredAiTools": ["claude", "cursor"],
            "detectedAiTool": "claude",
        },
    )
    child = cli_entry(
        command="model",
        subcommand="method",
        args=["run"],
        status="error",
        error_type="TimeoutError",
        error_message="step timed out after 30s",
        parent_invocation_id=workflow["properties"]["id"],
        workflow_context={
            "workflowName": "deploy",
            "runId": "run-7",
            "jobName": "build",
            "stepName": "compile",
            "modelType": "aws/ec2",
            "executor": "loopback",
        },
        trigger_source="schedule",
        initiated_by="cron",
    )
    user_error = cli_entry(
        command="vault",
        subcommand="get",
        args=["<redacted>"],
        option_keys=["--repo-dir"],
        global_options=["--verbose", "--no-color"],
        status="user_error",
        error_type="UserError",
        error_message="vault not found",
    )
    bare = cli_entry(command="version", subcommand=None, repo_id=None)
    return {"workflow": workflow, "child": child, "user_error": user_error, "bare": bare}


@pytest.mark.parametrize("kind", ["workflow", "child", "user_error", "bare"])
def test_builder_output_has_the_recorded_keys_and_types(kind):
    recorded, built = _recorded_entries()[kind], _built_entries()[kind]

    assert shape(built) == shape(recorded)
    assert list(built["properties"]) == list(recorded["properties"])


def test_builder_wraps_like_the_cli():
    one, two = cli_entry(), cli_entry()

    assert cli_body([one]) is one
    assert cli_body([one, two]) == {"events": [one, two]}


# --- the acceptance rule ----------------------------------------------------------------------


def test_unknown_fields_at_every_level_are_accepted_stored_and_scored(client, member, ingest_key):
    entry = cli_entry(command="data", sandbox={"kind": "docker", "layers": [1, 2]}, score=None)
    entry["properties"]["invocation"]["positionalKinds"] = ["file", "flag"]
    entry["properties"]["result"]["signal"] = None
    entry["properties"]["invocationContext"] = {"gpu": True, "isInteractive": True}
    entry["session"] = {"tty": True}

    response = cli_post(client, [entry], ingest_key[1])

    assert response.status_code == 202, response.content
    assert TelemetryEvent.objects.get().properties == entry["properties"]
    events_consume()
    assert member.metrics.event_counts == {"data": 1}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("invocation.globalOptions", {"json": True}),
        ("invocation.args", "deploy"),
        ("invocation.optionKeys", None),
        ("invocation.subcommand", 7),
        ("durationMs", "1234"),
        ("completedAt", "later"),
        ("result", "ok"),
        ("result.exitCode", "1"),
        ("result.status", 0),
        ("swampVersion", 20260822),
        ("platform", ["linux"]),
        ("invocationContext", "claude"),
        ("workflowContext.runId", 7),
        ("triggerSource", "carrier-pigeon"),
        ("$repo_id", {"id": 1}),
    ],
)
def test_drifted_types_the_pipeline_does_not_read_are_accepted(
    client, member, ingest_key, field, value
):
    entry = cli_entry(workflow_context={"workflowName": "w", "runId": "r"})
    parent, _, leaf = ("properties." + field).rpartition(".")
    target = entry
    for part in parent.split("."):
        target = target[part]
    target[leaf] = value

    response = cli_post(client, [entry], ingest_key[1])

    assert response.status_code == 202, response.content
    assert TelemetryEvent.objects.get().properties == entry["properties"]
    events_consume()
    assert member.metrics.total_events == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"command": ...}, "properties.invocation.command"),
        ({"command": ""}, "properties.invocation.command"),
        ({"command": ["model"]}, "properties.invocation.command"),
        ({"command": "m" * 101}, "properties.invocation.command"),
        ({"startedAt": ...}, "properties.startedAt"),
        ({"startedAt": None}, "properties.startedAt"),
        ({"startedAt": "yesterday"}, "properties.startedAt"),
        ({"startedAt": 1764320100000}, "properties.startedAt"),
        ({"invocation": ["model"]}, "properties.invocation"),
        ({"id": 7, "insert_id": ...}, "properties.id"),
        ({"id": ..., "insert_id": ...}, "insert_id"),
        ({"insert_id": ""}, "insert_id"),
    ],
)
def test_what_the_pipeline_reads_is_validated_strictly(client, ingest_key, change, field):
    entry = cli_entry()
    properties = entry["properties"]
    for key, value in change.items():
        target = (
            entry
            if key == "insert_id"
            else properties["invocation"]
            if key == "command"
            else properties
        )
        if value is ...:
            del target[key]
        else:
            target[key] = value

    response = cli_post(client, [cli_entry(), entry], ingest_key[1])

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {(error["index"], error["field"]) for error in errors} == {(1, field)}
    assert not TelemetryEvent.objects.exists()


# --- one source for the shape: /api/schema ---------------------------------------------------


def test_schema_describes_the_wire_format(client):
    document = client.get("/api/schema").json()
    cli = document["components"]["schemas"]["CliInvocationProperties"]
    invocation = cli["properties"]["invocation"]

    assert invocation["properties"]["globalOptions"]["anyOf"][0] == {
        "type": "array",
        "items": {"type": "string"},
    }
    assert cli["additionalProperties"] is True
    assert invocation["additionalProperties"] is True
    assert invocation["required"] == ["command"]
    assert set(cli["required"]) == {"invocation", "startedAt"}
    assert cli["properties"]["startedAt"]["format"] == "date-time"
    result = cli["properties"]["result"]["anyOf"][0]
    assert result["properties"]["status"]["anyOf"][0] == {
        "enum": ["error", "success", "user_error"]
    }


@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
@pytest.mark.parametrize("path", ["/api/leaderboard", "/api/schema", "/api/u/ada/score"])
def test_read_only_api_answers_405_to_other_methods(client, method, path):
    response = getattr(client, method)(path)

    assert response.status_code == 405
    assert "GET" in response["Allow"]
