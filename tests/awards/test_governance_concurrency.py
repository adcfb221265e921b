"""Governance under real concurrency on PostgreSQL: racing approvers, concurrent grants."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from awards.budgets import BudgetExceeded, budget_get
from awards.models import Award, AwardRequest
from awards.request_decisions import award_request_approve
from awards.requests import award_grant_or_request
from scoring.models import MemberMetrics
from tests.awards.conftest import staff_with
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serializes every writer, so nothing races",
    ),
]


def run_together(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run each worker in its own thread and connection, released at once by a barrier.

    Returns each worker's result, or the exception it raised.
    """
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(index: int, work: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work()
        except BaseException as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return results


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
    results = run_together(
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

    results = run_together([lambda m=m: grant(m) for m in members])
    granted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, BudgetExceeded) for r in refused), refused
    # 50,000 // 4,000 = 12 fit; the other 8 were refused, whatever the interleaving.
    assert (len(granted), len(refused)) == (12, 8)
    assert sum(Award.objects.values_list("points", flat=True)) == 48_000
    assert budget_get(granter=granter).remaining == 2_000
