"""``check_ledger`` over awards: award points always equal the unrevoked awards."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from awards.ledger import award_points_mismatches
from awards.services import GrantSpec, award_grant, award_revoke, awards_grant_bulk
from scoring.models import MemberMetrics, UserScore
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger_mix(granter):
    """Form grants, a bulk grant, a repeat and a revocation over three members."""
    ada, bob, cy = (UserFactory(username=name) for name in ("ada", "bob", "cy"))
    kept = award_grant(
        recipient=ada,
        points=300,
        reason="Kept",
        idempotency_key="a1",
        granted_by=granter,
        source="form",
    )
    gone = award_grant(
        recipient=ada,
        points=50,
        reason="Revoked later",
        idempotency_key="a2",
        granted_by=granter,
        source="form",
    )
    award_revoke(award=gone.award, revoked_by=granter, reason="Mistake")
    awards_grant_bulk(
        grants=[
            GrantSpec(recipient_id=bob.pk, points=20, reason="Bulk row", idempotency_key="b1"),
            GrantSpec(recipient_id=cy.pk, points=5, reason="Bulk row", idempotency_key="c1"),
            GrantSpec(recipient_id=bob.pk, points=20, reason="Bulk row", idempotency_key="b1"),
        ],
        granted_by=granter,
        source="bulk",
    )
    assert kept.created
    return ada, bob, cy


def check_ledger() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_ledger", stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def test_ledger_passes_after_grants_bulk_repeats_and_revocations(ledger_mix):
    assert award_points_mismatches() == []
    assert check_ledger() == (0, "ledger ok\n")
    assert [MemberMetrics.objects.get(member=m).award_points for m in ledger_mix] == [300, 20, 5]


def test_ledger_catches_a_hand_corrupted_total(ledger_mix):
    _, bob, _ = ledger_mix
    MemberMetrics.objects.filter(member=bob).update(award_points=21)

    code, output = check_ledger()

    assert code == 1
    assert "[awards] bob: unrevoked awards sum to 20, but MemberMetrics.award_points is 21" in (
        output
    )
    assert "ada" not in output
    assert "cy" not in output


def test_ledger_catches_a_score_that_disagrees(ledger_mix):
    *_, cy = ledger_mix
    UserScore.objects.filter(member=cy).update(award_points=6, total_score=6)
    assert award_points_mismatches() == [
        "cy: unrevoked awards sum to 5, but UserScore.award_points is 6"
    ]


def test_ledger_catches_a_missing_metrics_row_and_a_missing_score(ledger_mix):
    ada, *_ = ledger_mix
    MemberMetrics.objects.filter(member=ada).delete()
    UserScore.objects.filter(member=ada).delete()
    assert award_points_mismatches() == [
        "ada: unrevoked awards sum to 300, but MemberMetrics.award_points is 0 "
        "and there is no UserScore row"
    ]


def test_ledger_check_is_one_query(ledger_mix, django_assert_num_queries):
    UserFactory.create_batch(10)
    with django_assert_num_queries(1):
        award_points_mismatches()
