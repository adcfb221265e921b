"""Real concurrent transactions on PostgreSQL: grants, revocations and the score batch at
once; governance (racing approvers, grants against one budget); fifty submissions of one
award at once through ``POST /ingest`` (then the consumer) and through the staff grant form.

Each test runs its workers in threads, each with its own database connection, released
together by a barrier (``tests.concurrency.run_together``); every thread closes its
connection when done.
"""

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client

from awards.budgets import BudgetExceeded, budget_get
from awards.models import Award, AwardRequest, AwardRevocation
from awards.request_decisions import award_request_approve
from awards.requests import award_grant_or_request
from awards.services import GrantSpec, award_grant, award_revoke, awards_grant_bulk
from scoring.apikeys import api_key_create
from scoring.consumer import events_consume
from scoring.models import MemberMetrics, MetricsSnapshot, ScoreHistory, TelemetryEvent, UserScore
from scoring.registry import ledger_checks
from scoring.scores import scores_process_batch
from tests import concurrency
from tests.awards.conftest import staff_with
from tests.cli_wire import bot_award_event, ingest_post
from tests.factories import TelemetryEventFactory, UserFactory
from tests.reliability.replay import assert_ledger_consistent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serializes every writer, so nothing races",
    ),
]

THREADS = 8


def run_together(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run every worker in its own thread, released at once; re-raise the first error."""
    return concurrency.run_together(workers, raise_first_error=True)


def ledger_problems() -> list[str]:
    return [problem for check in ledger_checks().values() for problem in check()]


def test_eight_grants_of_one_key_make_one_award_and_one_addition():
    member, granter = UserFactory(), UserFactory(staff=True)

    def work():
        return award_grant(
            recipient=member,
            points=300,
            reason="Organised the swamp meetup",
            idempotency_key="meetup-2026",
            granted_by=granter,
            source="form",
        )

    results = run_together([work] * THREADS)

    assert sum(r.created for r in results) == 1
    assert {r.award.pk for r in results} == {Award.objects.get().pk}
    assert MemberMetrics.objects.get(member=member).award_points == 300
    assert UserScore.objects.get(member=member).total_score == 300
    assert ScoreHistory.objects.filter(member=member).count() == 1
    assert ledger_problems() == []


def test_grants_of_different_keys_while_the_score_batch_runs_end_exact():
    member, granter = UserFactory(), UserFactory(staff=True)
    # An activity part that the batch recomputes while the grants land: 1000 + 50 = 1050.
    MemberMetrics.objects.create(member=member, event_counts={"model": 100}, total_events=100)

    def grant(n: int) -> Callable[[], Any]:
        return lambda: award_grant(
            recipient=member,
            points=n * 10,
            reason=f"Contribution number {n}",
            idempotency_key=f"contribution-{n}",
            granted_by=granter,
            source="form",
        )

    def batch() -> int:
        scored = 0
        for _ in range(5):
            MetricsSnapshot.objects.create(member=member, enqueued_at="2026-11-24T00:00Z")
            scored += scores_process_batch()
        return scored

    results = run_together([grant(n) for n in range(1, THREADS + 1)] + [batch])

    expected = sum(n * 10 for n in range(1, THREADS + 1))
    assert all(r.created for r in results[:THREADS])
    assert results[THREADS] >= 1
    assert MemberMetrics.objects.get(member=member).award_points == expected
    score = UserScore.objects.get(member=member)
    assert (score.activity_score, score.award_points) == (1050, expected)
    assert score.total_score == 1050 + expected
    assert ledger_problems() == []


def test_eight_revocations_of_one_award_subtract_once():
    member, granter = UserFactory(), UserFactory(staff=True)
    keep = award_grant(
        recipient=member,
        points=40,
        reason="Kept award",
        idempotency_key="keep",
        granted_by=granter,
        source="form",
    )
    award = award_grant(
        recipient=member,
        points=500,
        reason="Granted twice by mistake",
        idempotency_key="oops",
        granted_by=granter,
        source="form",
    ).award
    assert keep.created

    results = run_together(
        [lambda: award_revoke(award=award, revoked_by=granter, reason="Mistake")] * THREADS
    )

    assert sum(r.created for r in results) == 1
    assert AwardRevocation.objects.count() == 1
    assert MemberMetrics.objects.get(member=member).award_points == 40
    assert UserScore.objects.get(member=member).total_score == 40
    assert ledger_problems() == []


def test_overlapping_bulk_grants_in_opposite_orders_neither_deadlock_nor_double_count():
    granter = UserFactory(staff=True)
    members = UserFactory.create_batch(20)
    rows = [
        GrantSpec(recipient_id=m.pk, points=5, reason="Bulk file row", idempotency_key=f"row-{i}")
        for i, m in enumerate(members)
    ]

    def forwards():
        return awards_grant_bulk(grants=rows, granted_by=granter, source="bulk")

    def backwards():
        return awards_grant_bulk(grants=rows[::-1], granted_by=granter, source="bulk")

    results = run_together([forwards, backwards] * (THREADS // 2))

    created = sum(r.created for result in results for r in result)
    assert created == len(rows)
    assert Award.objects.count() == len(rows)
    assert set(MemberMetrics.objects.values_list("award_points", flat=True)) == {5}
    assert ledger_problems() == []


def test_api_event_and_staff_form_granting_one_key_at_once_count_once():
    member, granter = UserFactory(username="ada"), UserFactory(granter=True)
    TelemetryEventFactory(
        event="award",
        member=granter,
        properties={"username": "ada", "points": 70, "reason": "Same award", "awardId": "k"},
    )

    def form():
        return award_grant(
            recipient=member,
            points=70,
            reason="Same award",
            idempotency_key="k",
            granted_by=granter,
            source="form",
        )

    run_together([form, events_consume, form, events_consume])

    assert Award.objects.count() == 1
    assert MemberMetrics.objects.get(member=member).award_points == 70
    assert UserScore.objects.get(member=member).total_score == 70
    assert ledger_problems() == []


# --- governance: racing approvers, concurrent grants against one budget ------------------


def test_two_approvers_racing_grant_one_award(governance):
    ada = UserFactory(username="ada")
    requester = staff_with("requester", "add_award")
    approvers = [staff_with(f"approver{i}", "approve_award") for i in range(2)]
    request = award_grant_or_request(
        recipient=ada,
        points=30_000,
        reason="Summit keynote",
        idempotency_key="race-1",
        granted_by=requester,
        source="form",
    ).request
    results = concurrency.run_together(
        [lambda a=a: award_request_approve(request_id=request.pk, approver=a) for a in approvers]
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    assert sorted(r.created for r in results) == [False, True]
    assert Award.objects.count() == 1
    assert MemberMetrics.objects.get(member=ada).award_points == 30_000
    assert AwardRequest.objects.get().state == "approved"


def test_twenty_concurrent_grants_never_overspend_the_budget(governance):
    granter = staff_with("granter", "add_award")
    members = [UserFactory(username=f"m{i}") for i in range(20)]

    def grant(member):
        return award_grant_or_request(
            recipient=member,
            points=4_000,
            reason="Fair helper",
            idempotency_key=f"fair-{member.username}",
            granted_by=granter,
            source="form",
        )

    results = concurrency.run_together([lambda m=m: grant(m) for m in members])
    granted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, BudgetExceeded) for r in refused), refused
    # 50,000 // 4,000 = 12 fit; the other 8 were refused, whatever the interleaving.
    assert (len(granted), len(refused)) == (12, 8)
    assert sum(Award.objects.values_list("points", flat=True)) == 48_000
    assert budget_get(granter=granter).remaining == 2_000


# --- fifty submissions of one award at once: through /ingest and the staff form -----------

FIFTY = 50


def _all_at_once(request) -> list:
    """Run ``request(n)`` in FIFTY threads released together; return the results in order."""
    return concurrency.run_together(
        [functools.partial(request, n) for n in range(FIFTY)], timeout=60
    )


@pytest.fixture
def award_bot(settings):
    """The plaintext of an award-scoped key, with the rate limit out of the way."""
    settings.INGEST_RATE_LIMIT = 10**9
    owner = UserFactory(username="award-bot", granter=True)
    return api_key_create(owner=owner, scopes=["award"])[1]


def _post(key: str, event: dict):
    response = ingest_post(Client(raise_request_exception=False), key, event)
    return response.status_code, response.json()


@pytest.mark.slow
def test_fifty_identical_award_events_at_once_grant_once(award_bot):
    UserFactory(username="egret")
    event = bot_award_event(username="egret", points=750, reason="Ran the meetup", award_id="m-1")

    results = _all_at_once(lambda n: _post(award_bot, event))

    assert all(isinstance(r, tuple) for r in results), results
    assert Counter(status for status, _ in results) == {202: FIFTY}
    assert sum(body["accepted"] for _, body in results) == 1
    assert sum(body["duplicates"] for _, body in results) == FIFTY - 1
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


@pytest.mark.slow
def test_fifty_conflicting_award_events_at_once_grant_one_payload_once(award_bot):
    UserFactory(username="ibis")
    payloads = [
        bot_award_event(
            username="ibis", points=100 + n % 2, reason="Fixed the docs", award_id="d-1"
        )
        for n in range(FIFTY)
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


@pytest.mark.slow
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
    assert Counter(results) == {302: FIFTY}
    award = Award.objects.get()
    assert (award.recipient, award.points, award.source) == (recipient, 300, "form")
    assert UserScore.objects.get(member=recipient).total_score == 300

    client = Client()
    client.force_login(staff)
    response = client.post("/staff/awards/new", {**form, "points": "301"})
    assert response.status_code == 422
    assert Award.objects.count() == 1
    assert_ledger_consistent()
