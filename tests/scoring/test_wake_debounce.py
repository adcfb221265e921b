"""Wake-ups are debounced per process: a burst of requests publishes one message per task."""

import pytest

from scoring import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """Task names as published to the broker (the broker is the outside world here), and a
    settable monotonic clock."""
    sent: list[str] = []
    for task in (tasks.events_consume_task, tasks.scores_process_batch_task):
        monkeypatch.setattr(
            task, "apply_async", lambda _name=task.name, **options: sent.append(_name)
        )
    clock = [1000.0]
    monkeypatch.setattr(tasks, "_clock", lambda: clock[0])
    return sent, clock


def test_a_burst_of_wakes_publishes_once_per_task(published, django_capture_on_commit_callbacks):
    sent, clock = published
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(50):
            tasks.consumer_wake()
            tasks.score_batch_wake()
    assert sorted(sent) == ["scoring.events_consume", "scoring.scores_process_batch"]

    clock[0] += tasks.WAKE_INTERVAL_S / 2  # still inside the interval: nothing new
    with django_capture_on_commit_callbacks(execute=True):
        tasks.consumer_wake()
    assert len(sent) == 2


def test_a_wake_after_the_interval_publishes_again(published, django_capture_on_commit_callbacks):
    sent, clock = published
    with django_capture_on_commit_callbacks(execute=True):
        tasks.consumer_wake()
    clock[0] += tasks.WAKE_INTERVAL_S
    with django_capture_on_commit_callbacks(execute=True):
        tasks.consumer_wake()
        tasks.consumer_wake()
    assert sent == ["scoring.events_consume", "scoring.events_consume"]


def test_a_rolled_back_transaction_does_not_use_up_the_interval(
    published, django_capture_on_commit_callbacks
):
    sent, _ = published
    with django_capture_on_commit_callbacks(execute=False):
        tasks.consumer_wake()  # never committed: the callback is dropped
    with django_capture_on_commit_callbacks(execute=True):
        tasks.consumer_wake()
    assert sent == ["scoring.events_consume"]


def test_a_broker_outage_is_only_logged_and_debounced_too(monkeypatch, caplog):
    attempts = []

    def refuse(**options):
        attempts.append(options)
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.events_consume_task, "apply_async", refuse)
    monkeypatch.setattr(tasks, "_clock", lambda: 5000.0)
    for _ in range(10):
        tasks._send(tasks.events_consume_task, expires=60)
    assert len(attempts) == 1  # one request per interval pays the connect timeout
    assert "could not wake scoring.events_consume" in caplog.text
