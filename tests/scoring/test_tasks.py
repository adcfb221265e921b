"""Tasks, beat schedule, heartbeat and the pipeline commands."""

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from scoring import tasks
from scoring.models import MemberMetrics, PipelineRun, TelemetryEvent, UserScore
from swampclub.celery import app
from tests.factories import TelemetryEventFactory

pytestmark = pytest.mark.django_db


def test_task_names_are_pinned():
    # Renaming a task strands every message (and beat entry) sent under the old name.
    assert tasks.events_consume_task.name == "scoring.events_consume"
    assert tasks.scores_process_batch_task.name == "scoring.scores_process_batch"
    assert tasks.heartbeat_task.name == "scoring.heartbeat"
    app.loader.import_default_modules()
    for name in ("scoring.events_consume", "scoring.scores_process_batch", "scoring.heartbeat"):
        assert name in app.tasks


def test_beat_runs_every_stage_with_expiry():
    schedule = settings.CELERY_BEAT_SCHEDULE
    by_task = {entry["task"]: entry for entry in schedule.values()}
    assert by_task["scoring.events_consume"]["schedule"].total_seconds() == 5
    assert by_task["scoring.scores_process_batch"]["schedule"].total_seconds() == 30
    assert by_task["scoring.heartbeat"]["schedule"].total_seconds() == 30
    # What a worker does at start: import every app's tasks module. Without it the check
    # depended on some earlier test having imported awards.tasks.
    app.loader.import_default_modules()
    for entry in schedule.values():
        assert entry["task"] in app.tasks
        assert 0 < entry["options"]["expires"] <= entry["schedule"].total_seconds()


def test_heartbeat_records_the_worker():
    assert tasks.heartbeat_task() == 1
    assert tasks.heartbeat_task() == 1
    run = PipelineRun.objects.get(kind="worker")
    assert run.runs == 2
    assert run.last_finished_at is not None


def test_tasks_run_the_services_directly(member):
    TelemetryEventFactory(member=member)
    assert tasks.events_consume_task() == 1
    assert tasks.scores_process_batch_task() == 1
    assert UserScore.objects.get(member=member).activity_score > 0


def test_commands_print_their_counts(member):
    TelemetryEventFactory.create_batch(3, member=member)
    out = StringIO()
    call_command("consume_events", "--batch-size", "2", stdout=out)
    assert out.getvalue().strip() == "consumed 3 events"
    assert MemberMetrics.objects.get(member=member).total_events == 3
    assert not TelemetryEvent.objects.pending().exists()
    out = StringIO()
    call_command("process_score_batch", stdout=out)
    assert out.getvalue().strip() == "scored 1 members"
    out = StringIO()
    call_command("process_score_batch", stdout=out)
    assert out.getvalue().strip() == "scored 0 members"
