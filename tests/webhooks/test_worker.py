"""A real Celery worker (threads pool, ``webhooks`` queue) against Redis and PostgreSQL:
the outbox's commit queues the dispatch, deliveries reach a real receiver, a hanging
endpoint does not hold up another, and beat's sweep picks up what nobody queued."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from awards.services import award_grant
from scoring.models import OutboxEvent
from tests.factories import UserFactory
from webhooks.models import WebhookDelivery
from webhooks.services import endpoint_create

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis for a real worker"),
]


def wait_for(predicate, *, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def start_celery(tmp_path):
    """Start ``celery -A swampclub <args>`` against the test database; stopped at teardown."""
    from swampclub.celery import app

    with app.connection_for_write() as conn:
        for queue in ("celery", "webhooks"):
            conn.default_channel.queue_purge(queue)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "SWAMPCLUB_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "swampclub.settings",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "1",
        "WEBHOOK_TIMEOUT_S": "3",
        "WEBHOOK_BACKOFF_BASE_S": "0.2",
        "WEBHOOK_BACKOFF_MAX_S": "0.5",
        "WEBHOOK_SWEEP_INTERVAL_S": "1",
        "WEBHOOK_SWEEP_GRACE_S": "0",
    }
    processes: list[tuple[subprocess.Popen, Path]] = []

    def start(*args: str, lease_s: str = "60", timeout_s: str = "3") -> subprocess.Popen:
        log = tmp_path / f"celery-{len(processes)}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "swampclub", *args, "--loglevel=INFO"],
                cwd=settings.BASE_DIR,
                env={**env, "WEBHOOK_LEASE_S": lease_s, "WEBHOOK_TIMEOUT_S": timeout_s},
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


WORKER = (
    "worker",
    "-Q",
    "webhooks",
    "--pool=threads",
    "--concurrency=4",
    "--without-mingle",
    "--without-gossip",
)


def _grant(member, granter, key, points=500):
    return award_grant(
        recipient=member,
        points=points,
        reason="Keynote at Swamp Summit 2026",
        idempotency_key=key,
        granted_by=granter,
        source="form",
    )


def test_commit_queues_delivery_to_a_real_receiver(receivers, start_celery):
    member = UserFactory(password=None)
    granter = UserFactory(password=None, staff=True)
    receiver = receivers()
    _, receiver.secret = endpoint_create(
        url=receiver.url, event_types=list(OutboxEvent.Type.values)
    )
    start_celery(*WORKER)
    _grant(member, granter, "one", points=20_000)
    wait_for(lambda: len(receiver.received) == 2, what="both events to arrive")
    assert all(r.verified for r in receiver.received)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids == list(OutboxEvent.objects.order_by("id").values_list("event_id", flat=True))
    wait_for(
        lambda: WebhookDelivery.objects.filter(state="delivered").count() == 2,
        what="deliveries to be recorded",
    )


def test_hanging_endpoint_does_not_hold_up_another(receivers, start_celery):
    member = UserFactory(password=None)
    granter = UserFactory(password=None, staff=True)
    hanging = receivers(script=["hang"] * 50, hang_s=30)
    healthy = receivers()
    endpoint_create(url=hanging.url, event_types=["award.granted"])
    _, healthy.secret = endpoint_create(url=healthy.url, event_types=["award.granted"])
    start_celery(*WORKER)
    for n in range(3):
        _grant(member, granter, f"k{n}")
    wait_for(lambda: len(healthy.received) == 3, timeout=60, what="the healthy deliveries")
    wait_for(lambda: hanging.received, what="the hanging endpoint's first request")
    # All three went to the healthy endpoint, in order, while the hanging endpoint's first
    # attempt was still waiting for its 3 s timeout.
    assert healthy.received[-1].at - hanging.received[0].at < 3
    assert all(r.verified for r in healthy.received)
    sent = [r.payload["data"]["award_id"] for r in healthy.received]
    assert sent == sorted(sent)
    # The hanging endpoint still only got its first event (per-member order) and times out.
    wait_for(
        lambda: WebhookDelivery.objects.filter(last_error="timed out").exists(),
        what="the hanging endpoint's timeout",
    )
    assert {len(hanging.received)} <= {1, 2}


def test_beat_sweep_delivers_what_no_task_queued(receivers, start_celery):
    member = UserFactory(password=None)
    granter = UserFactory(password=None, staff=True)
    receiver = receivers()
    _, receiver.secret = endpoint_create(url=receiver.url, event_types=["award.granted"])
    # The grant's dispatch message is lost (purged) before any worker runs.
    _grant(member, granter, "lost")
    from swampclub.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("webhooks")
    start_celery(*WORKER)
    start_celery("beat", "--max-interval=1")
    wait_for(lambda: len(receiver.received) == 1, what="the sweep to deliver")
    assert receiver.received[0].verified


def test_worker_killed_mid_delivery_is_replaced_same_id(receivers, start_celery):
    member = UserFactory(password=None)
    granter = UserFactory(password=None, staff=True)
    # The first request is held open until the worker sending it has been SIGKILLed.
    receiver = receivers(script=["hang"], hang_s=30)
    _, receiver.secret = endpoint_create(url=receiver.url, event_types=["award.granted"])
    worker = start_celery(*WORKER, lease_s="4", timeout_s="2")
    _grant(member, granter, "killed")
    wait_for(lambda: receiver.received, what="the first attempt to reach the receiver")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "sending"
    # A new worker and beat: the sweep finds the lease run out and sends again.
    start_celery(*WORKER, lease_s="4", timeout_s="2")
    start_celery("beat", "--max-interval=1")
    wait_for(lambda: len(receiver.received) >= 2, timeout=60, what="the redelivery")
    wait_for(
        lambda: WebhookDelivery.objects.filter(state="delivered").exists(),
        what="the delivery to be recorded",
    )
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert ids == {OutboxEvent.objects.get().event_id}
    assert receiver.received[-1].verified
