"""Wake-ups are debounced per process: a burst of requests publishes one message per task
at once and one more at the end of the interval (leading and trailing edge)."""

import threading
import time

import pytest

from scoring import wakeups

pytestmark = pytest.mark.django_db


class ManualTimer:
    """A scheduled trailing wake that runs only when the test says so."""

    def __init__(self, delay, function):
        self.delay, self.function, self.cancelled = delay, function, False

    def cancel(self):
        self.cancelled = True

    def fire(self):
        assert not self.cancelled
        self.function()


@pytest.fixture(autouse=True)
def timers(monkeypatch):
    """Trailing wakes scheduled during the test, in order (none runs on its own)."""
    scheduled: list[ManualTimer] = []

    def start(delay, function):
        scheduled.append(ManualTimer(delay, function))
        return scheduled[-1]

    monkeypatch.setattr(wakeups, "_start_timer", start)
    yield scheduled
    wakeups.wake_debounce_reset()


@pytest.fixture
def published(monkeypatch):
    """Task names as published to the broker (the broker is the outside world here), and a
    settable monotonic clock."""
    sent: list[str] = []
    monkeypatch.setattr(wakeups.app, "send_task", lambda name, **options: sent.append(name))
    clock = [1000.0]
    monkeypatch.setattr(wakeups, "_clock", lambda: clock[0])
    return sent, clock


def test_a_burst_of_wakes_publishes_once_per_task(published, django_capture_on_commit_callbacks):
    sent, clock = published
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(50):
            wakeups.consumer_wake()
            wakeups.score_batch_wake()
    assert sorted(sent) == ["scoring.events_consume", "scoring.scores_process_batch"]

    clock[0] += wakeups.WAKE_INTERVAL_S / 2  # still inside the interval: nothing new
    with django_capture_on_commit_callbacks(execute=True):
        wakeups.consumer_wake()
    assert len(sent) == 2


def test_a_wake_after_the_interval_publishes_again(published, django_capture_on_commit_callbacks):
    sent, clock = published
    with django_capture_on_commit_callbacks(execute=True):
        wakeups.consumer_wake()
    clock[0] += wakeups.WAKE_INTERVAL_S
    with django_capture_on_commit_callbacks(execute=True):
        wakeups.consumer_wake()
        wakeups.consumer_wake()
    assert sent == ["scoring.events_consume", "scoring.events_consume"]


def test_a_rolled_back_transaction_does_not_use_up_the_interval(
    published, django_capture_on_commit_callbacks
):
    sent, _ = published
    with django_capture_on_commit_callbacks(execute=False):
        wakeups.consumer_wake()  # never committed: the callback is dropped
    with django_capture_on_commit_callbacks(execute=True):
        wakeups.consumer_wake()
    assert sent == ["scoring.events_consume"]


def test_a_broker_outage_is_only_logged_and_debounced_too(monkeypatch, caplog):
    attempts = []

    def refuse(name, **options):
        attempts.append(options)
        raise ConnectionError("broker down")

    monkeypatch.setattr(wakeups.app, "send_task", refuse)
    monkeypatch.setattr(wakeups, "_clock", lambda: 5000.0)
    for _ in range(10):
        wakeups._send(wakeups.CONSUME_TASK, expires=60)
    assert len(attempts) == 1  # one request per interval pays the connect timeout
    assert "could not wake scoring.events_consume" in caplog.text


def test_the_last_wake_of_a_burst_is_published_at_the_end_of_the_interval(
    published, timers, django_capture_on_commit_callbacks
):
    sent, clock = published
    with django_capture_on_commit_callbacks(execute=True):
        wakeups.score_batch_wake()  # leading edge: at once
    assert sent == ["scoring.scores_process_batch"]
    for _ in range(9):  # the rest of the burst, inside the interval
        clock[0] += wakeups.WAKE_INTERVAL_S / 20
        with django_capture_on_commit_callbacks(execute=True):
            wakeups.score_batch_wake()
    # Exactly one trailing wake, due when the interval that started with the burst ends.
    assert len(timers) == 1
    assert timers[0].delay == pytest.approx(wakeups.WAKE_INTERVAL_S * 19 / 20)
    assert sent == ["scoring.scores_process_batch"]
    clock[0] = 1000.0 + wakeups.WAKE_INTERVAL_S
    timers[0].fire()
    assert sent == ["scoring.scores_process_batch"] * 2

    # The trailing publish took the slot: a wake right after it waits for the next edge.
    clock[0] += wakeups.WAKE_INTERVAL_S / 10
    with django_capture_on_commit_callbacks(execute=True):
        wakeups.score_batch_wake()
    assert len(sent) == 2
    assert len(timers) == 2


def test_a_lone_wake_schedules_no_trailing_publish(published, timers):
    sent, clock = published
    wakeups._send(wakeups.CONSUME_TASK, expires=60)
    clock[0] += wakeups.WAKE_INTERVAL_S * 5
    wakeups._send(wakeups.CONSUME_TASK, expires=60)
    assert sent == ["scoring.events_consume"] * 2
    assert timers == []


def test_reset_cancels_a_scheduled_trailing_wake(published, timers):
    sent, _ = published
    wakeups._send(wakeups.CONSUME_TASK, expires=60)
    wakeups._send(wakeups.CONSUME_TASK, expires=60)
    wakeups.wake_debounce_reset()
    assert timers[0].cancelled
    wakeups._send(wakeups.CONSUME_TASK, expires=60)
    assert sent == ["scoring.events_consume"] * 2


def test_a_burst_ends_with_a_real_trailing_publish_within_the_interval(monkeypatch):
    """Real clock and timer thread: after a burst, the last wake is published within one
    interval of it, not left to beat (leading-edge-only debouncing never published it)."""
    monkeypatch.undo()  # the autouse manual timer: this test runs the real one
    monkeypatch.setattr(wakeups, "WAKE_INTERVAL_S", 0.2)
    published = threading.Event()
    times: list[float] = []

    def record(name, **options):
        times.append(time.monotonic())
        if len(times) == 2:
            published.set()

    monkeypatch.setattr(wakeups.app, "send_task", record)
    for _ in range(5):
        wakeups._send(wakeups.CONSUME_TASK, expires=60)
        time.sleep(0.02)
    last_wake = time.monotonic()
    assert published.wait(timeout=5), "the burst's last wake was never published"
    assert len(times) == 2
    assert times[1] - last_wake <= 0.2 + 0.5  # the interval, plus a busy machine's slack
