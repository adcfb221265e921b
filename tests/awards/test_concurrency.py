"""Real concurrent transactions on PostgreSQL: grants, revocations and the score batch at once.

Each test runs its workers in threads, each with its own database connection, released
together by a barrier; every thread closes its connection when done.
"""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from awards.models import Award, AwardRevocation
from awards.services import GrantSpec, award_grant, award_revoke, awards_grant_bulk
from scoring.consumer import events_consume
from scoring.models import MemberMetrics, MetricsSnapshot, ScoreHistory, UserScore
from scoring.registry import ledger_checks
from scoring.scores import scores_process_batch
from tests import concurrency
from tests.factories import TelemetryEventFactory, UserFactory

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
