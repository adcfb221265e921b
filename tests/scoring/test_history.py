"""Scores as of a past day (``score_as_of``) and the score-history backfill built on it."""

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from scoring.consumer import events_consume
from scoring.formula import activity_score
from scoring.history import end_of_day, score_as_of, score_history_backfill
from scoring.models import ScoreHistory
from scoring.scores import scores_process_batch
from scoring.tiers import tier_for_total
from tests.factories import TelemetryEventFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = date(2026, 10, 1)


def _events(member, day: date, n: int, command: str = "model") -> None:
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    for _ in range(n):
        event = TelemetryEventFactory(member=member, timestamp=at)
        event.properties["invocation"]["command"] = command
        event.save(update_fields=["properties"])


@pytest.fixture
def member():
    """Active on DAY (3 model runs), DAY+1 (2 workflow runs) and DAY+5 (4 model runs)."""
    user = UserFactory()
    _events(user, DAY, 3)
    _events(user, DAY + timedelta(days=1), 2, "workflow")
    _events(user, DAY + timedelta(days=5), 4)
    events_consume()
    return user


def test_score_as_of_a_day_counts_only_what_had_happened_by_then(member):
    score = score_as_of(member_id=member.pk, day=DAY + timedelta(days=1))
    expected = activity_score(
        event_counts={"model": 3, "workflow": 2},
        active_dates=[DAY, DAY + timedelta(days=1)],
        as_of=DAY + timedelta(days=1),
    )
    assert score.activity_score == expected.activity
    assert score.streak_days == 2
    assert score.total_score == expected.activity
    assert score.tier == tier_for_total(expected.activity).ordinal
    # Before the first event there is nothing to score.
    assert score_as_of(member_id=member.pk, day=DAY - timedelta(days=1)).total_score == 0


def test_score_as_of_today_is_what_the_score_batch_computes(member):
    today = DAY + timedelta(days=5)
    batch = scores_process_batch(as_of=today)
    assert batch == 1
    assert score_as_of(member_id=member.pk, day=today).activity_score == (
        member.score.activity_score
    )


def test_award_points_in_force_come_from_the_caller(member):
    def awards(member_id, moment):
        assert member_id == member.pk
        return 500 if moment >= end_of_day(DAY + timedelta(days=1)) else 0

    before = score_as_of(member_id=member.pk, day=DAY, award_points_as_of=awards)
    after = score_as_of(member_id=member.pk, day=DAY + timedelta(days=1), award_points_as_of=awards)
    assert before.award_points == 0
    assert after.award_points == 500
    assert after.total_score == after.activity_score + 500


def test_backfill_records_each_change_before_the_first_recorded_row(member):
    today = DAY + timedelta(days=7)
    scores_process_batch(as_of=today)  # today's row, recorded by the batch
    recorded_today = ScoreHistory.objects.get(member=member)
    assert recorded_today.recorded_at.date() != DAY  # the batch records "now"
    ScoreHistory.objects.filter(pk=recorded_today.pk).update(
        recorded_at=end_of_day(today) - timedelta(hours=1)
    )

    written = score_history_backfill(member_ids=[member.pk], until=today)
    rows = list(
        ScoreHistory.objects.filter(member=member)
        .exclude(pk=recorded_today.pk)
        .order_by("recorded_at")
        .values_list("recorded_at", "total_score")
    )
    assert written == len(rows) > 1
    assert rows[0][0] == end_of_day(DAY)  # from the first active day...
    assert rows[-1][0] < recorded_today.recorded_at  # ...up to the recorded history
    # A row only where the total changed from the day before, each as of its day.
    totals = [total for _, total in rows]
    assert all(a != b for a, b in pairwise(totals))
    for recorded_at, total in rows:
        assert score_as_of(member_id=member.pk, day=recorded_at.date()).total_score == total
    # Already covered: a second run writes nothing.
    assert score_history_backfill(member_ids=[member.pk], until=today) == 0


def test_backfill_ignores_members_without_events():
    quiet = UserFactory()
    assert score_history_backfill(member_ids=[quiet.pk], until=DAY) == 0
    assert score_history_backfill(member_ids=[], until=DAY) == 0
