"""``manage.py check_ledger`` with the scoring invariants."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from scoring.ledger import score_mismatches
from scoring.models import MemberMetrics, TierBadgeClaim, UserScore
from scoring.scores import scores_refresh
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _ledger() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_ledger", stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def test_consistent_scores_are_ok(member):
    # Activity only: award points must match the award ledger, which the awards app checks.
    MemberMetrics.objects.create(
        member=member, event_counts={"model": 100, "data": 40}, total_events=140
    )
    scores_refresh(member_ids=[member.pk])
    scores_refresh(member_ids=[UserFactory().pk])
    assert score_mismatches() == []
    code, out = _ledger()
    assert code == 0
    assert out.strip().endswith("ledger ok")


def test_every_kind_of_mismatch_is_listed(member):
    MemberMetrics.objects.create(member=member, award_points=70_000)
    scores_refresh(member_ids=[member.pk])  # total 70,000 → tier 3, claims 1..3
    # A hand-edited total, a stale award figure, a wrong tier and a lost claim.
    UserScore.objects.filter(member=member).update(total_score=70_001, tier=4)
    MemberMetrics.objects.filter(member=member).update(award_points=69_000)
    TierBadgeClaim.objects.filter(member=member, tier=2).delete()
    # Award points in metrics but no score at all.
    orphan = UserFactory(username="orphan")
    MemberMetrics.objects.create(member=orphan, award_points=5)

    problems = score_mismatches()
    name = member.username
    assert f"score of {name}: total 70001 != activity 0 + awards 70000" in problems
    assert f"score of {name}: award_points 70000 != metrics award_points 69000" in problems
    assert f"score of {name}: tier 4 != tier 3 of total 70001" in problems
    assert f"claims of {name}: 2 tier badge claims up to tier 4, expected 4" in problems
    assert "score of orphan: missing, but metrics hold 5 award points" in problems
    assert len(problems) == 5

    code, out = _ledger()
    assert code == 1
    for problem in problems:
        assert f"[scores] {problem}" in out


def test_score_without_metrics_must_have_zero_awards(member):
    UserScore.objects.create(
        member=member,
        username=member.username,
        award_points=10,
        total_score=10,
        computed_at=timezone.now(),
    )
    TierBadgeClaim.objects.create(
        member=member, tier=1, claimed_at=timezone.now(), total_at_claim=0
    )
    assert score_mismatches() == [
        f"score of {member.username}: award_points 10 != metrics award_points 0"
    ]
