"""Fifty concurrent submissions of one award key: one award; another payload: 409.

Real threads, each with its own PostgreSQL connection, released together by a barrier;
through ``POST /ingest`` (then the consumer) and through the staff grant form.
"""

import functools
import json
from collections import Counter

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client

from awards.models import Award
from scoring.apikeys import api_key_create
from scoring.consumer import events_consume
from scoring.models import MemberMetrics, TelemetryEvent, UserScore
from scoring.scores import scores_process_batch
from tests.cli_wire import bot_award_event
from tests.concurrency import run_together
from tests.factories import UserFactory
from tests.reliability.replay import assert_ledger_consistent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]

THREADS = 50


def _all_at_once(request) -> list:
    """Run ``request(n)`` in THREADS threads released together; return the results in order."""
    return run_together([functools.partial(request, n) for n in range(THREADS)], timeout=60)


@pytest.fixture
def award_bot(settings):
    """The plaintext of an award-scoped key, with the rate limit out of the way."""
    settings.INGEST_RATE_LIMIT = 10**9
    return api_key_create(owner=UserFactory(username="award-bot", granter=True), scopes=["award"])[
        1
    ]


def _post(key: str, event: dict):
    client = Client(HTTP_X_API_KEY=key, raise_request_exception=False)
    response = client.post("/ingest", data=json.dumps(event), content_type="application/json")
    return response.status_code, response.json()


def test_fifty_identical_award_events_at_once_grant_once(award_bot):
    UserFactory(username="egret")
    event = bot_award_event(username="egret", points=750, reason="Ran the meetup", award_id="m-1")

    results = _all_at_once(lambda n: _post(award_bot, event))

    assert all(isinstance(r, tuple) for r in results), results
    assert Counter(status for status, _ in results) == {202: THREADS}
    assert sum(body["accepted"] for _, body in results) == 1
    assert sum(body["duplicates"] for _, body in results) == THREADS - 1
    assert TelemetryEvent.objects.filter(event="award").count() == 1

    events_consume()
    scores_process_batch()
    award = Award.objects.get()
    assert (award.recipient.username, award.points, award.source) == ("egret", 750, "api")
    assert MemberMetrics.objects.get(member=award.recipient).award_points == 750
    assert UserScore.objects.get(member=award.recipient).total_score == 750

    # The same key with other points is a conflict, answered at once and stored nowhere.
    other = bot_award_event(username="egret", points=751, reason="Ran the meetup", award_id="m-1")
    status, body = _post(award_bot, other)
    assert status == 409, body
    assert TelemetryEvent.objects.filter(event="award").count() == 1
    assert_ledger_consistent()


def test_fifty_conflicting_award_events_at_once_grant_one_payload_once(award_bot):
    UserFactory(username="ibis")
    payloads = [
        bot_award_event(
            username="ibis", points=100 + n % 2, reason="Fixed the docs", award_id="d-1"
        )
        for n in range(THREADS)
    ]

    results = _all_at_once(lambda n: _post(award_bot, payloads[n]))

    assert all(isinstance(r, tuple) for r in results), results
    # Exactly one submission stored its event; the others of its payload are duplicates of
    # it, and every submission of the other payload is a conflict — never a 202.
    winners = [n for n, (status, body) in enumerate(results) if body.get("accepted")]
    assert len(winners) == 1, results
    won = payloads[winners[0]]["properties"]["points"]
    for n, ((status, body), payload) in enumerate(zip(results, payloads, strict=True)):
        if n == winners[0]:
            assert (status, body) == (202, {"accepted": 1, "duplicates": 0})
        elif payload["properties"]["points"] == won:
            assert (status, body) == (202, {"accepted": 0, "duplicates": 1})
        else:
            assert (status, body["error"]) == (409, "conflict"), body
    assert TelemetryEvent.objects.filter(event="award").count() == 1

    events_consume()
    scores_process_batch()
    award = Award.objects.get()
    assert award.points == won
    assert MemberMetrics.objects.get(member=award.recipient).award_points == award.points
    # Afterwards every submission of the losing payload is a conflict.
    loser = next(p for p in payloads if p["properties"]["points"] != award.points)
    assert _post(award_bot, loser)[0] == 409
    assert_ledger_consistent()


def test_fifty_submits_of_one_grant_form_grant_once():
    staff = UserFactory(username="warden-50", staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type__app_label="awards", codename="add_award")
    )
    recipient = UserFactory(username="spoonbill")
    form = {
        "username": "spoonbill",
        "points": "300",
        "reason": "Organised the cleanup",
        "category": "community",
        "public": "on",
        "staff_note": "",
        "idempotency_key": "form-rendering-1",
    }

    def submit(n: int) -> int:
        client = Client(raise_request_exception=False)
        client.force_login(staff)
        return client.post("/staff/awards/new", form).status_code

    results = _all_at_once(submit)

    assert all(isinstance(r, int) for r in results), results
    # A plain POST redirects (PRG), whether it granted or found the grant already made.
    assert Counter(results) == {302: THREADS}
    award = Award.objects.get()
    assert (award.recipient, award.points, award.source) == (recipient, 300, "form")
    assert UserScore.objects.get(member=recipient).total_score == 300

    client = Client()
    client.force_login(staff)
    response = client.post("/staff/awards/new", {**form, "points": "301"})
    assert response.status_code == 422
    assert Award.objects.count() == 1
    assert_ledger_consistent()
