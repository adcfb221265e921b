"""Outages are logged on their edges: one line when a dependency goes away, one when it is
back (with the number of requests affected), never a traceback per request."""

import logging

import pytest
from django.test import override_settings

from scoring import wakeups
from scoring.models import TelemetryEvent
from tests.scoring.test_ingest import cli_event, post

pytestmark = pytest.mark.django_db

CLOSED_PORT_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}
WORKING_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _lines(caplog, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.levelno >= logging.WARNING]


def test_a_cache_outage_logs_one_line_going_and_one_coming_back(client, ingest_key, caplog):
    raw_key = ingest_key[1]
    caplog.set_level(logging.INFO)
    with override_settings(CACHES=CLOSED_PORT_CACHE):
        for n in range(6):
            assert post(client, cli_event(n), raw_key).status_code == 202
    assert TelemetryEvent.objects.count() == 6  # the limiter failed open

    down = _lines(caplog, "swampclub.ratelimit")
    assert len(down) == 1, [r.getMessage() for r in down]
    assert "rate limit cache unavailable" in down[0].getMessage()
    assert "ConnectionError" in down[0].getMessage()
    assert down[0].exc_info is None  # one line, no chained traceback
    assert "Traceback" not in caplog.text

    with override_settings(CACHES=WORKING_CACHE):
        for n in range(6, 9):
            assert post(client, cli_event(n), raw_key).status_code == 202
    lines = _lines(caplog, "swampclub.ratelimit")
    assert len(lines) == 2, [r.getMessage() for r in lines]
    assert "rate limit cache is back after" in lines[1].getMessage()
    assert "6 requests affected" in lines[1].getMessage()


def test_a_second_outage_is_logged_again(ingest_key, caplog):
    from scoring.ratelimit import rate_limit_hit

    for _ in range(2):
        with override_settings(CACHES=CLOSED_PORT_CACHE):
            rate_limit_hit(bucket="b", limit=10, window_s=60)
            rate_limit_hit(bucket="b", limit=10, window_s=60)
        with override_settings(CACHES=WORKING_CACHE):
            rate_limit_hit(bucket="b", limit=10, window_s=60)
    messages = [r.getMessage() for r in _lines(caplog, "swampclub.ratelimit")]
    assert len(messages) == 4
    assert ["unavailable" in m for m in messages] == [True, False, True, False]
    assert all("2 requests affected" in m for m in messages[1::2])


def test_a_broker_outage_logs_one_line_going_and_one_coming_back(monkeypatch, caplog):
    up = [False]
    published = []

    def apply_async(name, **options):
        if not up[0]:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        published.append(options)

    monkeypatch.setattr(wakeups.app, "send_task", apply_async)
    clock = [100.0]
    monkeypatch.setattr(wakeups, "_clock", lambda: clock[0])
    for _ in range(5):  # one publish per interval, each failing
        wakeups._send(wakeups.CONSUME_TASK, expires=60)
        clock[0] += wakeups.WAKE_INTERVAL_S
    down = _lines(caplog, "swampclub.tasks")
    assert len(down) == 1
    assert "broker unavailable; could not wake scoring.events_consume" in down[0].getMessage()
    assert down[0].exc_info is None

    up[0] = True
    wakeups._send(wakeups.CONSUME_TASK, expires=60)
    assert len(published) == 1
    lines = _lines(caplog, "swampclub.tasks")
    assert len(lines) == 2
    assert "broker is back after" in lines[1].getMessage()
    assert "5 wake-ups affected" in lines[1].getMessage()
