"""The pipeline for real: concurrent refreshes on PostgreSQL, and a Celery worker (and beat)
taking events posted to /ingest all the way to the score API — against PostgreSQL and Redis,
or, with neither configured, the SQLite file and filesystem broker ``make run`` uses."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from scoring.apikeys import api_key_create
from scoring.formula import activity_score
from scoring.models import (
    MemberMetrics,
    MetricsSnapshot,
    PipelineRun,
    ScoreHistory,
    TelemetryEvent,
    TierBadgeClaim,
    TierChange,
    UserScore,
)
from scoring.scores import scores_refresh, utc_today
from tests.cli_wire import cli_entry
from tests.factories import TelemetryEventFactory, UserFactory

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks"
)


def wait_for(predicate, *, timeout: float = 60, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction pg_stat_activity is a snapshot taken at first access.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_member_serialize():
    member = UserFactory(password=None)
    MemberMetrics.objects.create(member=member, award_points=65_000)  # tier 3
    first_done = threading.Event()
    results = {}
    errors: list[BaseException] = []

    def first():
        try:
            with transaction.atomic():
                results["first"] = scores_refresh(member_ids=[member.pk])[member.pk]
                first_done.set()
                # Hold the score-row lock until the second refresh is queued behind it.
                wait_for(_lock_waiters, timeout=30, what="the second refresh to wait")
        except BaseException as exc:
            errors.append(exc)
            first_done.set()
        finally:
            connections.close_all()

    def second():
        try:
            first_done.wait(timeout=30)
            results["second"] = scores_refresh(member_ids=[member.pk])[member.pk]
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (results["first"].previous_tier, results["first"].tier) == (1, 3)
    # The second ran after the first committed and saw its result: nothing moved again.
    assert (results["second"].previous_tier, results["second"].tier) == (3, 3)
    assert results["second"].previous_total == 65_000
    assert results["second"].new_claims == ()
    assert TierChange.objects.filter(member=member).count() == 1
    assert sorted(TierBadgeClaim.objects.values_list("tier", flat=True)) == [1, 2, 3]
    assert ScoreHistory.objects.filter(member=member).count() == 1


# --- A real worker ------------------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


@pytest.fixture
def celery_env(test_var_dir):
    """Environment for worker/beat subprocesses: the test database and broker, fast beat.

    On PostgreSQL and Redis the children get their URLs. Without them they get the test
    run's ``var/`` folder (``SWAMPCLUB_VAR_DIR``), which holds the SQLite test database
    file and the filesystem broker's folders: the same embedded setup ``make run`` uses.
    """
    from swampclub.celery import app

    # Messages left in the queue by earlier tests would only be no-op runs, but start clean.
    app.control.purge()
    for schedule in test_var_dir.glob("celerybeat-schedule*"):
        schedule.unlink()  # an earlier test's beat state
    env = {
        **os.environ,
        "SWAMPCLUB_VAR_DIR": str(test_var_dir),
        "CONSUME_INTERVAL_S": "1",
        "SCORE_BATCH_INTERVAL_S": "1",
        "DJANGO_SETTINGS_MODULE": "swampclub.settings",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = _database_url()
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    return env


@pytest.fixture
def start_celery(celery_env, tmp_path):
    """Start ``celery -A swampclub <args>`` subprocesses; each is stopped at teardown."""
    processes: list[tuple[subprocess.Popen, Path]] = []

    def start(*args: str) -> subprocess.Popen:
        log = tmp_path / f"celery-{len(processes)}.log"
        with log.open("w") as out:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "swampclub", *args, "--loglevel=INFO"],
                cwd=settings.BASE_DIR,
                env=celery_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append((process, log))
        return process

    yield start
    for process, log in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        sys.stdout.write(f"--- {log.name}\n{log.read_text()[-3000:]}\n")


def _worker_args() -> tuple[str, ...]:
    return ("worker", "--pool=solo", "--without-mingle", "--without-gossip")


def _cli_event(n: int, command: str, day, hour: int = 10) -> dict:
    # Never in the future (ingest refuses that): today's events are clamped to this minute.
    started = datetime.combine(day, day_time(hour, 0, n % 60), tzinfo=UTC)
    started = min(started, timezone.now().replace(second=n % 60, microsecond=0))
    at = started.isoformat().replace("+00:00", "Z")
    event = cli_entry(
        command=command,
        started_at=started,
        duration_ms=80,
        entry_id=f"worker-test-{n:05d}",
        distinct_id="device-worker-test",
        repo_id=None,
    )
    del event["insert_id"]  # the default: properties.id
    event["timestamp"] = at
    return event


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_takes_ingested_events_to_the_score_api(client, start_celery):
    member = UserFactory(username="marsh-runner", password=None)
    _, key = api_key_create(owner=member, scopes=["ingest"], name="ci")
    today = utc_today()
    days = [today - timedelta(days=offset) for offset in (0, 1, 2, 6)]
    groups = ["model", "Workflow", "data", "vault"]
    events = [_cli_event(n, groups[n % 4], days[n % 4], hour=n % 24) for n in range(120)]
    start_celery(*_worker_args())

    for chunk in (events[:70], events[70:]):
        response = client.post(
            "/ingest",
            data=json.dumps({"events": chunk}),
            content_type="application/json",
            headers={"x-api-key": key},
        )
        assert response.status_code == 202, response.content
    # Ingest woke the consumer after commit; the consumer wakes the score batch.
    wait_for(
        lambda: not TelemetryEvent.objects.pending().exists(),
        what="the worker to consume every event",
    )
    score = wait_for(
        lambda: UserScore.objects.filter(member=member, total_score__gt=0).first(),
        what="the worker to score the member",
    )
    metrics = MemberMetrics.objects.get(member=member)
    assert metrics.total_events == 120
    assert metrics.event_counts == {"model": 30, "workflow": 30, "data": 30, "vault": 30}
    expected = activity_score(
        event_counts=metrics.event_counts, active_dates=metrics.active_dates, as_of=today
    )
    body = client.get(f"/api/u/{member.username}/score").json()
    assert body["activity_score"] == expected.activity == score.activity_score
    assert body["total_score"] == expected.activity
    assert body["streak_days"] == 3
    assert not MetricsSnapshot.objects.filter(processed_at__isnull=True).exists()
    assert TelemetryEvent.objects.processed().count() == 120


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_beat_drives_the_pipeline_without_any_wake(start_celery):
    member = UserFactory(password=None)
    # Stored straight into the queue: nobody woke the consumer, only beat's schedule can.
    TelemetryEventFactory.create_batch(5, member=member)
    start_celery(*_worker_args())
    start_celery("beat", "--max-interval=1")
    wait_for(
        lambda: UserScore.objects.filter(member=member, total_score__gt=0).exists(),
        what="beat's schedule to consume and score",
    )
    assert MemberMetrics.objects.get(member=member).total_events == 5
    wait_for(
        lambda: PipelineRun.objects.filter(kind="worker").exists(),
        what="the worker heartbeat",
    )
    kinds = set(PipelineRun.objects.values_list("kind", flat=True))
    assert {"consume", "score_batch", "worker"} <= kinds
