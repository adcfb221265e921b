"""award_grant, award_revoke and the bulk grant: idempotency, validation, metrics, scores."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from awards.models import Award, AwardRevocation
from awards.services import (
    AwardConflict,
    BulkGrantError,
    GrantSpec,
    award_grant,
    award_revoke,
    awards_bulk_check,
    awards_grant_bulk,
)
from scoring.models import MemberMetrics, ScoreHistory, TierBadgeClaim, TierChange, UserScore
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def grant(recipient, granter, **overrides):
    kwargs = {
        "recipient": recipient,
        "points": 500,
        "reason": "Wrote the swamp CLI tutorial",
        "idempotency_key": "key-1",
        "granted_by": granter,
        "source": Award.Source.FORM,
    }
    kwargs.update(overrides)
    return award_grant(**kwargs)


def award_points(member) -> int:
    return MemberMetrics.objects.get(member=member).award_points


# --- award_grant ------------------------------------------------------------------------------


def test_grant_creates_award_adds_points_and_scores_at_once(member, granter):
    result = grant(member, granter, category="content", public=False, staff_note="via Slack")

    assert result.created is True
    award = Award.objects.get()
    assert result.award == award
    assert (award.points, award.reason, award.category, award.public) == (
        500,
        "Wrote the swamp CLI tutorial",
        "content",
        False,
    )
    assert (award.staff_note, award.granted_by, award.source) == ("via Slack", granter, "form")
    # The metrics row did not exist: the grant created it with only the award points.
    metrics = MemberMetrics.objects.get(member=member)
    assert (metrics.award_points, metrics.total_events, metrics.event_counts) == (500, 0, {})
    # The score is refreshed in the same call, and the result already knows it.
    assert (result.score.total_score, result.score.award_points) == (500, 500)
    assert result.score.previous_total == 0
    score = UserScore.objects.get(member=member)
    assert (score.total_score, score.award_points, score.activity_score) == (500, 500, 0)
    assert ScoreHistory.objects.filter(member=member).count() == 1


def test_award_points_bypass_the_activity_formula(member, granter):
    # 100 model + 12 data runs, no active dates: activity = 1000 + 120 + 2 * 50 = 1220.
    MemberMetrics.objects.create(
        member=member, event_counts={"model": 100, "data": 12}, total_events=112
    )
    result = grant(member, granter, points=51)

    metrics = MemberMetrics.objects.get(member=member)
    # No event, group, date or cap changed: points go to award_points only.
    assert (metrics.event_counts, metrics.total_events, metrics.active_dates) == (
        {"model": 100, "data": 12},
        112,
        [],
    )
    assert (result.score.activity_score, result.score.award_points) == (1220, 51)
    assert result.score.total_score == 1271


def test_same_key_and_payload_returns_the_stored_award_and_changes_nothing(member, granter):
    first = grant(member, granter)
    history = ScoreHistory.objects.count()

    # Category, visibility and notes are metadata of the first write, not the payload.
    again = grant(member, granter, category="event", public=False, staff_note="retry")

    assert (again.created, again.award, again.score) == (False, first.award, None)
    assert Award.objects.count() == 1
    stored = Award.objects.get()
    assert (stored.category, stored.public, stored.staff_note) == ("other", True, "")
    assert award_points(member) == 500
    assert UserScore.objects.get(member=member).total_score == 500
    assert ScoreHistory.objects.count() == history


def test_surrounding_whitespace_of_the_reason_is_not_a_different_payload(member, granter):
    first = grant(member, granter, reason="  Ran the meetup ")
    assert first.award.reason == "Ran the meetup"
    again = grant(member, granter, reason="Ran the meetup")
    assert again.created is False
    assert award_points(member) == 500


@pytest.mark.parametrize(
    "change", [{"points": 501}, {"reason": "Wrote a different tutorial"}], ids=["points", "reason"]
)
def test_same_key_with_a_different_payload_is_a_conflict(member, granter, change):
    first = grant(member, granter)
    with pytest.raises(AwardConflict) as excinfo:
        grant(member, granter, **change)
    assert excinfo.value.existing == first.award
    assert f"award #{first.award.pk}" in excinfo.value.messages[0]
    assert Award.objects.count() == 1
    assert award_points(member) == 500


def test_the_key_is_per_recipient(granter):
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    assert grant(ada, granter).created
    assert grant(bob, granter, points=7, reason="Another thing").created
    assert (award_points(ada), award_points(bob)) == (500, 7)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (0, "between 1 and 100,000"),
        (-5, "between 1 and 100,000"),
        (100_001, "between 1 and 100,000"),
        (True, "whole number"),
        (2.5, "whole number"),
        ("10", "whole number"),
        (None, "whole number"),
    ],
)
def test_points_must_be_a_whole_number_in_range(member, granter, points, message):
    with pytest.raises(ValidationError) as excinfo:
        grant(member, granter, points=points)
    assert list(excinfo.value.message_dict) == ["points"]
    assert message in excinfo.value.message_dict["points"][0]
    assert not Award.objects.exists()
    assert not MemberMetrics.objects.exists()


@override_settings(AWARD_MAX_POINTS=50)
def test_award_max_points_setting_caps_one_grant(member, granter):
    with pytest.raises(ValidationError) as excinfo:
        grant(member, granter, points=51)
    assert excinfo.value.message_dict["points"] == ["Points must be between 1 and 50."]
    assert grant(member, granter, points=50).created


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("ok", "at least 3"),
        ("  ab  ", "at least 3"),
        ("   ", "blank"),
        ("x" * 501, "at most 500"),
        ("nul\x00byte", "NUL"),
        (42, "text"),
    ],
)
def test_reason_is_3_to_500_characters(member, granter, reason, message):
    with pytest.raises(ValidationError) as excinfo:
        grant(member, granter, reason=reason)
    assert list(excinfo.value.message_dict) == ["reason"]
    assert message in excinfo.value.message_dict["reason"][0]
    assert not Award.objects.exists()


def test_reason_of_exactly_500_characters_is_accepted(member, granter):
    assert grant(member, granter, reason="y" * 500).award.reason == "y" * 500


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("category", {"category": "bribery"}),
        ("public", {"public": "yes"}),
        ("idempotency_key", {"idempotency_key": ""}),
        ("idempotency_key", {"idempotency_key": "k" * 201}),
        ("staff_note", {"staff_note": "n" * 2001}),
        ("granted_by_text", {"granted_by_text": "g" * 201}),
    ],
)
def test_other_fields_are_validated_by_name(member, granter, field, overrides):
    with pytest.raises(ValidationError) as excinfo:
        grant(member, granter, **overrides)
    assert list(excinfo.value.message_dict) == [field]
    assert not Award.objects.exists()


def test_errors_of_several_fields_come_together(member, granter):
    with pytest.raises(ValidationError) as excinfo:
        grant(member, granter, points=0, reason="", category="nope")
    assert set(excinfo.value.message_dict) == {"points", "reason", "category"}


def test_nobody_grants_to_themselves(granter):
    with pytest.raises(ValidationError) as excinfo:
        grant(granter, granter)
    assert excinfo.value.message_dict == {"username": ["Nobody can grant an award to themselves."]}
    assert not Award.objects.exists()


def test_an_inactive_member_receives_nothing(granter):
    gone = UserFactory(is_active=False)
    with pytest.raises(ValidationError) as excinfo:
        grant(gone, granter)
    assert list(excinfo.value.message_dict) == ["username"]
    assert not Award.objects.exists()


def test_unknown_source_is_a_programming_error(member, granter):
    with pytest.raises(ValueError, match="source"):
        grant(member, granter, source="carrier-pigeon")


def test_grant_is_undone_with_the_surrounding_transaction(member, granter):
    def grant_then_fail():
        with transaction.atomic():
            grant(member, granter)
            raise RuntimeError("caller failed after granting")

    with pytest.raises(RuntimeError):
        grant_then_fail()
    assert not Award.objects.exists()
    assert not MemberMetrics.objects.exists()
    assert not UserScore.objects.exists()


def test_grants_accumulate(member, granter):
    for n in range(1, 4):
        grant(member, granter, idempotency_key=f"k{n}", points=n * 100)
    assert award_points(member) == 600
    assert UserScore.objects.get(member=member).total_score == 600


# --- tiers ------------------------------------------------------------------------------------


def test_award_crossing_a_tier_records_one_change_and_the_claim_and_revocation_drops_it(
    member, granter
):
    MemberMetrics.objects.create(
        member=member, event_counts={"model": 100, "data": 12}, total_events=112
    )
    grant(member, granter, idempotency_key="earlier", points=51)
    assert UserScore.objects.get(member=member).total_score == 1271
    assert list(TierBadgeClaim.objects.values_list("tier", flat=True)) == [1]

    big = grant(member, granter, idempotency_key="big", points=50_000, reason="Keynote talk")

    assert (big.score.total_score, big.score.previous_tier, big.score.tier) == (51_271, 1, 2)
    assert big.score.new_claims == (2,)
    change = TierChange.objects.get()
    assert (change.from_tier, change.to_tier, change.cause) == (1, 2, "award")
    assert sorted(TierBadgeClaim.objects.values_list("tier", flat=True)) == [1, 2]

    revoked = award_revoke(award=big.award, revoked_by=granter, reason="Talk was cancelled")

    assert (revoked.score.total_score, revoked.score.tier) == (1271, 1)
    changes = list(TierChange.objects.order_by("id").values_list("from_tier", "to_tier", "cause"))
    assert changes == [(1, 2, "award"), (2, 1, "revocation")]
    # Claims are permanent: the tier follows the total, the badge stays.
    assert sorted(TierBadgeClaim.objects.values_list("tier", flat=True)) == [1, 2]
    assert UserScore.objects.get(member=member).tier == 1


def test_award_jumping_several_tiers_claims_every_tier_with_one_change(member, granter):
    result = grant(member, granter, points=100_000)
    assert result.score.tier == 4
    assert result.score.new_claims == (1, 2, 3, 4)
    assert TierChange.objects.count() == 1
    assert sorted(TierBadgeClaim.objects.values_list("tier", flat=True)) == [1, 2, 3, 4]


# --- award_revoke -----------------------------------------------------------------------------


def test_revoke_subtracts_once_and_keeps_the_award(member, granter):
    keep = grant(member, granter, idempotency_key="keep", points=30).award
    award = grant(member, granter, idempotency_key="go", points=500).award

    first = award_revoke(award=award, revoked_by=granter, reason="  Duplicate of #12 ")
    second = award_revoke(award=award, revoked_by=granter, reason="Another attempt")

    assert first.created is True
    assert first.revocation.reason == "Duplicate of #12"
    assert first.score.total_score == 30
    assert (second.created, second.revocation, second.score) == (False, first.revocation, None)
    assert AwardRevocation.objects.count() == 1
    assert award_points(member) == 30
    assert UserScore.objects.get(member=member).total_score == 30
    # The award rows themselves never change or disappear.
    assert set(Award.objects.values_list("pk", "points")) == {(keep.pk, 30), (award.pk, 500)}


def test_regranting_a_revoked_key_returns_the_revoked_award_without_counting(member, granter):
    award = grant(member, granter).award
    award_revoke(award=award, revoked_by=granter, reason="Mistake")
    again = grant(member, granter)
    assert (again.created, again.award) == (False, award)
    assert award_points(member) == 0


@pytest.mark.parametrize("reason", ["no", "", "r" * 501, None])
def test_revoke_needs_a_reason_of_3_to_500_characters(member, granter, reason):
    award = grant(member, granter).award
    with pytest.raises(ValidationError) as excinfo:
        award_revoke(award=award, revoked_by=granter, reason=reason)
    assert list(excinfo.value.message_dict) == ["reason"]
    assert not AwardRevocation.objects.exists()
    assert award_points(member) == 500


# --- awards_grant_bulk ------------------------------------------------------------------------


def spec(member, key, points=10, reason="Bulk reason", **extra) -> GrantSpec:
    return GrantSpec(
        recipient_id=member.pk, points=points, reason=reason, idempotency_key=key, **extra
    )


def test_bulk_grants_every_row_and_sums_per_member(granter):
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    rows = [spec(ada, "a1", 10), spec(bob, "b1", 20), spec(ada, "a2", 30, category="event")]

    results = awards_grant_bulk(grants=rows, granted_by=granter, source=Award.Source.BULK)

    assert [r.created for r in results] == [True, True, True]
    assert [r.award.idempotency_key for r in results] == ["a1", "b1", "a2"]
    assert results[2].award.category == "event"
    assert {a.source for a in Award.objects.all()} == {"bulk"}
    assert (award_points(ada), award_points(bob)) == (40, 20)
    assert results[0].score.total_score == 40
    assert results[1].score.total_score == 20
    assert UserScore.objects.get(member=ada).total_score == 40


def test_bulk_rerun_grants_nothing_twice(granter, member):
    rows = [spec(member, f"k{i}") for i in range(5)]
    awards_grant_bulk(grants=rows, granted_by=granter, source="bulk")
    again = awards_grant_bulk(grants=rows, granted_by=granter, source="bulk")
    assert [r.created for r in again] == [False] * 5
    assert all(r.score is None for r in again)
    assert Award.objects.count() == 5
    assert award_points(member) == 50


def test_bulk_repeated_key_within_one_call_counts_once(granter, member):
    rows = [spec(member, "same"), spec(member, "same"), spec(member, "other")]
    results = awards_grant_bulk(grants=rows, granted_by=granter, source="bulk")
    assert [r.created for r in results] == [True, False, True]
    assert results[0].award == results[1].award
    assert award_points(member) == 20


def test_bulk_is_all_or_nothing_by_default(granter, member):
    grant(member, granter, idempotency_key="taken", points=99, reason="Earlier award")
    rows = [
        spec(member, "fine"),
        spec(member, "bad", points=0),
        spec(granter, "self"),
        spec(member, "taken", points=1),
        spec(member, "fine", points=11),
    ]
    with pytest.raises(BulkGrantError) as excinfo:
        awards_grant_bulk(grants=rows, granted_by=granter, source="bulk")
    assert sorted(excinfo.value.row_errors) == [1, 2]
    assert "points" in excinfo.value.row_errors[1].message_dict
    assert "username" in excinfo.value.row_errors[2].message_dict
    assert Award.objects.count() == 1

    # Once the invalid rows are gone, the conflicts surface — and still nothing is written.
    with pytest.raises(BulkGrantError) as excinfo:
        awards_grant_bulk(grants=[rows[0], rows[3], rows[4]], granted_by=granter, source="bulk")
    assert sorted(excinfo.value.row_errors) == [1, 2]
    assert isinstance(excinfo.value.row_errors[1], AwardConflict)
    assert Award.objects.count() == 1
    assert award_points(member) == 99


def test_bulk_skip_invalid_grants_the_rest_and_explains_each_refusal(granter, member):
    existing = grant(member, granter, idempotency_key="taken", points=99, reason="Earlier").award
    gone = UserFactory(is_active=False)
    rows = [
        spec(member, "fine"),
        spec(gone, "inactive"),
        spec(member, "taken", points=1),
        spec(member, "fine2", reason="x"),
    ]
    results = awards_grant_bulk(grants=rows, granted_by=granter, source="api", skip_invalid=True)

    assert results[0].created
    assert results[0].error is None
    assert (results[1].award, results[1].created) == (None, False)
    assert "username" in results[1].error.message_dict
    assert results[2].award == existing
    assert isinstance(results[2].error, AwardConflict)
    assert "reason" in results[3].error.message_dict
    assert Award.objects.count() == 2
    assert award_points(member) == 109


def test_bulk_uses_a_constant_number_of_queries(granter):
    members = UserFactory.create_batch(60)

    def run(prefix: str, count: int) -> int:
        rows = [spec(members[i % len(members)], f"{prefix}{i}") for i in range(count)]
        with CaptureQueriesContext(connection) as queries:
            awards_grant_bulk(grants=rows, granted_by=granter, source="bulk")
        return len(queries)

    run("warm", 60)  # every member has metrics and a score row from here on
    assert run("small", 5) == run("large", 400)


def test_bulk_of_nothing_does_nothing(granter):
    with CaptureQueriesContext(connection) as queries:
        assert awards_grant_bulk(grants=[], granted_by=granter, source="bulk") == []
    # Only the transaction's savepoint: no read, no write.
    assert all("SAVEPOINT" in q["sql"] for q in queries.captured_queries)


def test_bulk_check_reports_errors_and_existing_without_writing(granter, member):
    stored = grant(member, granter, idempotency_key="done", points=10, reason="Bulk reason").award
    rows = [
        spec(member, "done"),
        spec(member, "done", points=11),
        spec(member, "new"),
        spec(member, "new", points=12),
        spec(member, "broken", points=-1),
    ]
    check = awards_bulk_check(grants=rows, granted_by=granter)
    assert check.existing == {0: stored}
    assert sorted(check.errors) == [1, 3, 4]
    assert isinstance(check.errors[1], AwardConflict)
    assert "idempotency_key" in check.errors[3].message_dict
    assert "points" in check.errors[4].message_dict
    assert Award.objects.count() == 1


def test_bulk_without_a_granter_records_none(member):
    # A system grant (a data migration, say) has no granter of record.
    results = awards_grant_bulk(
        grants=[spec(member, "sys-1"), spec(member, "sys-2")], granted_by=None, source="bulk"
    )
    assert [r.created for r in results] == [True, True]
    assert set(Award.objects.values_list("granted_by", flat=True)) == {None}
