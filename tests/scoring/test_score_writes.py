"""How scores_refresh writes: unchanged rows are left alone, changed rows updated in place,
first rows inserted once; values with quotes and backslashes survive the array path; every
write carries the rules version, as_of and inputs the explanation is built from."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from scoring.explain import activity_explanation
from scoring.models import (
    OutboxEvent,
    ScoreHistory,
    ScoringRules,
    TierBadgeClaim,
    TierChange,
    UserScore,
)
from scoring.rules import rules_activate
from scoring.scores import scores_refresh
from scoring.sql_arrays import _array_literal
from tests.factories import UserFactory
from tests.scoring.helpers import members_batch
from tests.scoring.test_scores import AS_OF, _days, _metrics

pytestmark = pytest.mark.django_db


def _score_writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if "scoring_userscore" in q["sql"]
        and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]


def test_an_unchanged_score_is_not_rewritten(member):
    _metrics(member, counts={"model": 3}, dates=_days(2), award_points=5)
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    before = UserScore.objects.get(member=member)
    with CaptureQueriesContext(connection) as queries:
        result = scores_refresh(member_ids=[member.pk], as_of=AS_OF)[member.pk]
    assert _score_writes(queries) == []
    after = UserScore.objects.get(member=member)
    assert after.computed_at == before.computed_at  # the time the score last changed
    assert (result.total_score, result.previous_total) == (before.total_score,) * 2
    assert ScoreHistory.objects.count() == 1


def test_a_changed_score_is_updated_in_place(member):
    other = UserFactory()
    _metrics(member, counts={"model": 3}, dates=_days(2))
    _metrics(other, counts={"data": 1}, dates=_days(1))
    scores_refresh(member_ids=[member.pk, other.pk], as_of=AS_OF)
    untouched = UserScore.objects.get(member=other)
    first = UserScore.objects.get(member=member)
    _metrics(member, counts={"model": 3}, dates=_days(2), award_points=30_000)
    with CaptureQueriesContext(connection) as queries:
        result = scores_refresh(member_ids=[member.pk, other.pk], as_of=AS_OF)
    assert len(_score_writes(queries)) == 1  # one statement, for the one changed row
    score = UserScore.objects.get(member=member)
    assert score.award_points == 30_000
    assert score.total_score == first.total_score + 30_000
    assert score.tier == 2
    assert result[member.pk].tier_changed
    assert score.computed_at > first.computed_at
    assert UserScore.objects.get(member=other).computed_at == untouched.computed_at
    assert list(
        TierBadgeClaim.objects.filter(member=member).order_by("tier").values_list("tier")
    ) == [(1,), (2,)]
    assert ScoreHistory.objects.filter(member=member).count() == 2


def test_a_streak_change_alone_is_written(member):
    # Same total is impossible to arrange with the formula's multipliers in general, but a
    # changed streak or active-day count must never be skipped: compare every value.
    _metrics(member, counts={}, dates=_days(1))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    _metrics(member, counts={}, dates=_days(3))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    score = UserScore.objects.get(member=member)
    assert (score.total_score, score.streak_days, score.active_days) == (0, 3, 3)
    assert ScoreHistory.objects.count() == 0  # the total never moved


def test_a_renamed_member_gets_the_new_username_on_the_next_refresh(member):
    _metrics(member, counts={"model": 1}, dates=_days(1))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    get_user_model().objects.filter(pk=member.pk).update(username="renamed")
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    assert UserScore.objects.get(member=member).username == "renamed"


def _explained(member) -> UserScore:
    # The explanation is rebuilt from the stored version, as_of and inputs alone: it must
    # reproduce the stored activity exactly.
    score = UserScore.objects.get(member=member)
    assert activity_explanation(score=score).activity_score == score.activity_score
    return score


def test_a_first_row_is_written_with_version_as_of_and_inputs(member):
    _metrics(member, counts={"model": 3, "data": 2}, dates=_days(2))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    score = _explained(member)
    assert (score.rules_version, score.as_of) == (1, AS_OF)
    assert score.breakdown == {"counts": {"model": 3, "data": 2}, "rolling_days": 2}
    assert list(ScoreHistory.objects.values_list("total_score", "rules_version")) == [
        (score.total_score, 1)
    ]


def test_a_changed_row_gets_the_new_inputs_and_history_the_version(member):
    _metrics(member, counts={"model": 3}, dates=_days(2))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    ScoringRules.objects.create(version=2, base_points=20, note="doubled")
    rules_activate(version=2)
    _metrics(member, counts={"model": 4}, dates=_days(3))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF, cause=TierChange.Cause.RULES)
    score = _explained(member)
    assert (score.rules_version, score.as_of, score.streak_days) == (2, AS_OF, 3)
    assert score.breakdown == {"counts": {"model": 4}, "rolling_days": 3}
    assert list(
        ScoreHistory.objects.order_by("recorded_at").values_list("rules_version", flat=True)
    ) == [1, 2]


def test_a_new_day_with_the_same_figures_rewrites_as_of_but_adds_no_history(member):
    # No active days: the figures do not depend on the day, only as_of moves. The row is
    # rewritten so the stored as_of (what the explanation reports) is the refresh's day.
    _metrics(member, counts={"model": 3}, dates=[])
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    before = UserScore.objects.get(member=member)
    next_day = AS_OF + timedelta(days=1)
    with CaptureQueriesContext(connection) as queries:
        result = scores_refresh(member_ids=[member.pk], as_of=next_day)[member.pk]
    assert len(_score_writes(queries)) == 1
    after = _explained(member)
    assert after.as_of == next_day
    assert after.computed_at > before.computed_at
    assert (after.total_score, after.breakdown) == (before.total_score, before.breakdown)
    assert result.previous_total == result.total_score
    assert ScoreHistory.objects.count() == 1


def test_a_new_version_with_the_same_figures_is_written(member):
    _metrics(member, counts={"model": 3}, dates=_days(2))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    ScoringRules.objects.create(version=2, note="same constants")
    rules_activate(version=2)
    scores_refresh(member_ids=[member.pk], as_of=AS_OF, cause=TierChange.Cause.RULES)
    score = _explained(member)
    assert score.rules_version == 2
    assert ScoreHistory.objects.count() == 1  # the total never moved


def test_a_score_without_stored_inputs_is_rewritten_with_them(member):
    _metrics(member, counts={"model": 3}, dates=_days(2))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    UserScore.objects.filter(member=member).update(breakdown=None)
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    assert _explained(member).breakdown == {"counts": {"model": 3}, "rolling_days": 2}


def test_an_override_is_compared_as_stored(member):
    # The override travels as JSON: an unchanged refresh under it must not rewrite the row.
    _metrics(member, counts={"model": 500}, dates=_days(3))
    with override_settings(SCORING={"GROUP_CAP": 2000, "GROUP_CAPS": {"model": 1500}}):
        scores_refresh(member_ids=[member.pk], as_of=AS_OF)
        before = _explained(member)
        with CaptureQueriesContext(connection) as queries:
            scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    assert _score_writes(queries) == []
    assert UserScore.objects.get(member=member).computed_at == before.computed_at
    # Without the override the constants differ: rewritten, explained without it.
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    score = _explained(member)
    assert "constants" not in score.breakdown
    assert score.activity_score < before.activity_score


def test_tier_changes_of_first_and_updated_rows_reach_the_outbox(member):
    other = UserFactory()
    _metrics(member, counts={"model": 3}, dates=_days(1))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    _metrics(member, counts={"model": 3}, dates=_days(1), award_points=30_000)
    _metrics(other, counts={}, dates=[], award_points=30_000)
    scores_refresh(member_ids=[member.pk, other.pk], as_of=AS_OF)
    events = {
        e.member_id: e.payload
        for e in OutboxEvent.objects.filter(event_type=OutboxEvent.Type.TIER_CHANGED)
    }
    assert set(events) == {member.pk, other.pk}
    assert events[member.pk]["username"] == member.username
    assert events[other.pk]["username"] == other.username
    assert events[other.pk]["from"]["ordinal"] == 1
    assert events[other.pk]["to"]["ordinal"] == 2
    assert events[other.pk]["cause"] == "activity"
    assert TierChange.objects.count() == 2


@pytest.mark.parametrize("username", ['quo"te', "back\\slash", "comma,brace{}", "NULL", " sp "])
def test_odd_usernames_survive_the_batch_write(username):
    odd = UserFactory(username=username)
    _metrics(odd, counts={"vault": 2}, dates=_days(1))
    scores_refresh(member_ids=[odd.pk], as_of=AS_OF)
    assert UserScore.objects.get(member=odd).username == username


def test_array_literals():
    assert _array_literal([1, 2, 30]) == "{1,2,30}"
    assert _array_literal([None, 2]) == '{NULL,"2"}'  # quoted, still a valid integer
    assert _array_literal(['a"b', "c\\d", None]) == '{"a\\"b","c\\\\d",NULL}'


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: real concurrent transactions"
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_refreshes_create_each_row_once_with_the_latest_metrics():
    members = members_batch(20)
    for m in members:
        _metrics(m, counts={"model": 2}, dates=_days(1))
    ids = [m.pk for m in members]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            barrier.wait()
            scores_refresh(member_ids=ids, as_of=AS_OF)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert UserScore.objects.count() == 20
    # One history row and one tier-1 claim per member: nobody scored a member twice from 0.
    assert ScoreHistory.objects.count() == 20
    assert TierBadgeClaim.objects.count() == 20
