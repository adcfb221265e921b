"""PostgreSQL unavailable: ingest answers 503 — never 202 — and nothing is half-written.

A real gunicorn serves the app; its only road to PostgreSQL is a TCP forwarder the test can
cut. The test process itself talks to PostgreSQL directly, so it sees exactly what the
server committed.
"""

import pytest

from scoring.apikeys import api_key_create
from scoring.consumer import events_consume
from scoring.models import TelemetryEvent
from scoring.scores import scores_process_batch
from tests.cli_wire import cli_event, cli_events
from tests.factories import UserFactory
from tests.reliability.harness import TcpCutoff, http_post_json, wait_until
from tests.reliability.replay import assert_ledger_consistent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WEB_PORT = 8172


@pytest.fixture
def cutoff(transactional_db):
    """A forwarder to the test database's PostgreSQL server."""
    from django.db import connection

    settings_dict = connection.settings_dict
    proxy = TcpCutoff(target=(settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"])))
    proxy.accept()
    yield proxy
    proxy.refuse()


@pytest.fixture
def web(processes, cutoff):
    """gunicorn whose DATABASE_URL points at the forwarder instead of PostgreSQL."""
    url = processes.env()["DATABASE_URL"]
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    proxied = url.replace(f"@{host_port}/", f"@127.0.0.1:{cutoff.port}/")
    processes.web(port=WEB_PORT, env={"DATABASE_URL": proxied})
    return f"http://127.0.0.1:{WEB_PORT}/ingest"


@pytest.fixture
def key_headers(transactional_db):
    """An ingest key of a fresh member."""
    _, raw = api_key_create(owner=UserFactory(username="mudskipper"), scopes=["ingest"])
    return {"x-api-key": raw}


def _stored(prefix: str) -> int:
    return TelemetryEvent.objects.filter(insert_id__startswith=prefix).count()


def _process_and_check_ledger() -> None:
    # No worker runs here: drain in-process, then every stored event must count once.
    events_consume()
    scores_process_batch()
    assert_ledger_consistent()


def test_ingest_answers_503_while_the_database_refuses_connections(web, cutoff, key_headers):
    status, _, body = http_post_json(web, cli_event("before-1"), headers=key_headers)
    assert (status, body) == (202, {"accepted": 1, "duplicates": 0})

    cutoff.refuse()
    for n in range(3):
        status, headers, body = http_post_json(web, cli_event(f"down-{n}"), headers=key_headers)
        assert status == 503, body
        assert body["error"] == "unavailable"
        assert int(headers["Retry-After"]) > 0
    assert _stored("down-") == 0

    cutoff.accept()

    # The server recovers on its own (its broken connections are discarded), and a client
    # retrying what got a 503 gets every event stored once.
    def retried() -> bool:
        status, _, _ = http_post_json(web, {"events": []}, headers=key_headers)
        return status != 503

    wait_until(retried, timeout=30, message="the server to reach PostgreSQL again")
    status, _, body = http_post_json(
        web, {"events": [cli_event(f"down-{n}") for n in range(3)]}, headers=key_headers
    )
    assert (status, body) == (202, {"accepted": 3, "duplicates": 0})
    assert _stored("down-") == 3
    assert _stored("before-") == 1
    _process_and_check_ledger()


def test_connection_lost_as_the_insert_is_sent_stores_nothing_and_answers_503(
    web, cutoff, key_headers
):
    batch = {"events": cli_events("batch", 25)}
    # The connection drops as the INSERT is sent: PostgreSQL never sees it.
    cutoff.cut_on(rb"(?i)INSERT INTO \"?scoring_telemetryevent")
    status, _, body = http_post_json(web, batch, headers=key_headers)
    assert cutoff.cuts == 1, "the request never reached the statement the test cuts at"
    assert status == 503, body
    assert _stored("batch-") == 0

    # Retrying the same batch stores all of it, once.
    status, _, body = http_post_json(web, batch, headers=key_headers)
    assert (status, body) == (202, {"accepted": 25, "duplicates": 0})
    status, _, body = http_post_json(web, batch, headers=key_headers)
    assert (status, body) == (202, {"accepted": 0, "duplicates": 25})
    assert _stored("batch-") == 25
    _process_and_check_ledger()


def test_answer_lost_after_the_insert_ran_is_503_and_the_retry_counts_duplicates(
    web, cutoff, key_headers
):
    # The INSERT reaches PostgreSQL and commits, but the answer never comes back: the
    # client cannot know, so it is told 503 (never 202) and retries; the retry stores
    # nothing twice and reports every event as already seen.
    batch = {"events": cli_events("lost", 25)}
    cutoff.cut_on(rb"(?i)INSERT INTO \"?scoring_telemetryevent", after_sending=True)
    status, _, body = http_post_json(web, batch, headers=key_headers)
    assert cutoff.cuts == 1, "the request never reached the statement the test cuts at"
    assert status == 503, body
    assert _stored("lost-") == 25  # all of the batch, as one statement: never a part

    status, _, body = http_post_json(web, batch, headers=key_headers)
    assert (status, body) == (202, {"accepted": 0, "duplicates": 25})
    assert _stored("lost-") == 25
    _process_and_check_ledger()
