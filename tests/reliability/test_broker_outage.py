"""Redis stopped and restarted while events arrive: nothing accepted is lost.

A private redis-server (never the shared one) is the broker and cache of a real gunicorn, a
worker and beat. While it is down, ingest keeps answering 202 because PostgreSQL holds the
work; once it is back, the worker and beat reconnect and the backlog is processed.
"""

import pytest

from scoring.apikeys import api_key_create
from scoring.models import MetricsSnapshot, TelemetryEvent, UserScore
from tests.cli_wire import cli_events
from tests.factories import UserFactory
from tests.reliability.harness import http_post_json, wait_until
from tests.reliability.replay import assert_ledger_consistent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WEB_PORT = 8173


def _pending() -> int:
    return TelemetryEvent.objects.pending().count()


def _caught_up() -> bool:
    return _pending() == 0 and not MetricsSnapshot.objects.filter(processed_at__isnull=True)


def test_ingest_keeps_accepting_while_redis_is_down_and_work_resumes_after(processes, broker):
    members = [UserFactory(username=f"bittern-{n}") for n in range(3)]
    keys = [{"x-api-key": api_key_create(owner=m, scopes=["ingest"])[1]} for m in members]
    beat_env = {"CONSUME_INTERVAL_S": "1", "SCORE_BATCH_INTERVAL_S": "1"}
    web = processes.web(port=WEB_PORT)
    worker = processes.worker(wait=False)
    processes.beat(env=beat_env)
    worker.wait_for_log(" ready.")
    url = f"http://127.0.0.1:{WEB_PORT}/ingest"

    status, _, body = http_post_json(url, {"events": cli_events("up", 10)}, headers=keys[0])
    assert (status, body) == (202, {"accepted": 10, "duplicates": 0})
    wait_until(_caught_up, timeout=60, message="the pipeline to process the first events")

    broker.stop()
    for n, headers in enumerate(keys * 2):
        status, _, body = http_post_json(
            url, {"events": cli_events(f"down-{n}", 20, days=3)}, headers=headers
        )
        assert (status, body) == (202, {"accepted": 20, "duplicates": 0})
    stored = TelemetryEvent.objects.filter(insert_id__startswith="down-").count()
    assert stored == 120
    assert web.alive()

    broker.start()
    wait_until(_caught_up, timeout=120, message="the backlog processed after Redis returned")
    assert TelemetryEvent.objects.processed().count() == 130
    assert UserScore.objects.count() == 3
    assert worker.log().count("Connected to redis") >= 2, "the worker reconnected"
    assert_ledger_consistent()
