"""Governance under real concurrency on PostgreSQL: racing approvers, concurrent grants."""

import pytest
from django.db import connection

from awards.budgets import BudgetExceeded, budget_get
from awards.models import Award, AwardRequest
from awards.requests import award_grant_or_request, award_request_approve
from scoring.models import MemberMetrics
from tests.awards.conftest import staff_with
from tests.concurrency import run_together
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serializes every writer, so nothing races",
    ),
]


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
