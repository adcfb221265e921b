"""A database outage seen by ``POST /ingest``: 503s, logged on its edges — one line when
it starts, one when it ends with the count of requests answered 503 — never a traceback
per request."""

import logging

import pytest
from django.db import InterfaceError, OperationalError

from scoring import views
from scoring.models import TelemetryEvent
from tests.scoring.test_ingest import cli_event, post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _lines(caplog) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "swampclub.ingest" and r.levelno >= logging.WARNING
    ]


@pytest.fixture
def database_down(monkeypatch):
    """While ``down[0]`` is True every store fails as a lost connection does."""
    down = [True]
    real = views.events_ingest

    def events_ingest(**kwargs):
        if down[0]:
            raise OperationalError("connection to server at 127.0.0.1 failed: refused")
        return real(**kwargs)

    monkeypatch.setattr(views, "events_ingest", events_ingest)
    return down


def test_an_outage_logs_one_line_going_and_one_coming_back(
    client, ingest_key, database_down, caplog
):
    raw_key = ingest_key[1]
    caplog.set_level(logging.INFO)
    for n in range(5):
        response = post(client, cli_event(n), raw_key)
        assert response.status_code == 503
        assert response.json()["error"] == "unavailable"
    assert not TelemetryEvent.objects.exists()

    down = _lines(caplog)
    assert len(down) == 1, [r.getMessage() for r in down]
    assert "database unavailable" in down[0].getMessage()
    assert "OperationalError" in down[0].getMessage()
    assert down[0].exc_info is None  # one line, no traceback
    assert "Traceback" not in caplog.text

    database_down[0] = False
    for n in range(5, 8):
        assert post(client, cli_event(n), raw_key).status_code == 202
    lines = _lines(caplog)
    assert len(lines) == 2, [r.getMessage() for r in lines]
    assert "database is back after" in lines[1].getMessage()
    assert "5 requests affected" in lines[1].getMessage()
    assert TelemetryEvent.objects.count() == 3


def test_a_refused_request_after_the_outage_also_ends_it(client, ingest_key, database_down, caplog):
    raw_key = ingest_key[1]
    assert post(client, cli_event(0), raw_key).status_code == 503
    database_down[0] = False
    # The key was read and the request judged: the database answers again.
    assert post(client, {"events": []}, raw_key).status_code == 400
    messages = [r.getMessage() for r in _lines(caplog)]
    assert len(messages) == 2
    assert "1 request affected" in messages[1]


def test_an_interface_error_counts_as_the_same_outage(client, ingest_key, monkeypatch, caplog):
    raw_key = ingest_key[1]
    errors = iter([OperationalError("server closed the connection"), InterfaceError("closed")])

    def events_ingest(**kwargs):
        raise next(errors)

    monkeypatch.setattr(views, "events_ingest", events_ingest)
    assert post(client, cli_event(0), raw_key).status_code == 503
    assert post(client, cli_event(1), raw_key).status_code == 503
    assert len(_lines(caplog)) == 1


def test_a_bad_key_during_an_outage_does_not_end_it(client, ingest_key, database_down, caplog):
    raw_key = ingest_key[1]
    assert post(client, cli_event(0), raw_key).status_code == 503
    # A malformed key is refused without asking the database: that says nothing about it.
    assert post(client, cli_event(1), "not-a-key").status_code == 401
    assert post(client, cli_event(2), raw_key).status_code == 503
    messages = [r.getMessage() for r in _lines(caplog)]
    assert len(messages) == 1, messages
