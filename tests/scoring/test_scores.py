"""scores_refresh and the score batch: totals, history, claims, tier changes, query budget."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scoring.models import (
    MemberMetrics,
    MetricsSnapshot,
    PipelineRun,
    ScoreHistory,
    TierBadgeClaim,
    TierChange,
    UserScore,
)
from scoring.scores import scores_process_batch, scores_refresh
from tests.factories import UserFactory
from tests.scoring.helpers import members_batch

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 24)


def _days(n: int, end: date = AS_OF) -> list[str]:
    return [(end - timedelta(days=i)).isoformat() for i in range(n)]


def _metrics(member, *, counts=None, dates=(), award_points=0) -> MemberMetrics:
    return MemberMetrics.objects.update_or_create(
        member=member,
        defaults={
            "event_counts": counts or {},
            "active_dates": sorted(dates),
            "total_events": sum((counts or {}).values()),
            "award_points": award_points,
        },
    )[0]


def _snapshot(member) -> MetricsSnapshot:
    return MetricsSnapshot.objects.create(member=member, enqueued_at=timezone.now())


def test_refresh_scores_the_worked_example_plus_awards(member):
    _metrics(
        member,
        counts={"model": 30, "workflow": 120, "data": 5},
        dates=_days(5),
        award_points=250,
    )
    result = scores_refresh(member_ids=[member.pk], as_of=AS_OF)[member.pk]
    assert (result.activity_score, result.award_points, result.total_score) == (1755, 250, 2005)
    score = UserScore.objects.get(member=member)
    assert score.username == member.username
    assert (score.activity_score, score.award_points, score.total_score) == (1755, 250, 2005)
    assert (score.tier, score.streak_days, score.active_days) == (1, 5, 5)
    assert ScoreHistory.objects.filter(member=member).count() == 1
    assert list(TierBadgeClaim.objects.filter(member=member).values_list("tier", flat=True)) == [1]
    assert result.new_claims == (1,)
    assert not result.tier_changed
    assert not TierChange.objects.exists()


def test_member_without_metrics_scores_zero_with_tier_one(member):
    result = scores_refresh(member_ids=[member.pk], as_of=AS_OF)[member.pk]
    assert (result.total_score, result.tier) == (0, 1)
    score = UserScore.objects.get(member=member)
    assert (score.total_score, score.tier, score.streak_days) == (0, 1, 0)
    assert not ScoreHistory.objects.exists()
    assert TierBadgeClaim.objects.filter(member=member, tier=1).exists()


def test_unknown_member_ids_are_ignored(member):
    assert scores_refresh(member_ids=[member.pk + 1000], as_of=AS_OF) == {}
    assert not UserScore.objects.exists()


def test_multi_tier_jump_claims_every_crossed_tier_and_one_tier_change(member):
    _metrics(member, award_points=155_000)  # tier 5 (Fen Haunt, 150,000)
    result = scores_refresh(member_ids=[member.pk], cause=TierChange.Cause.AWARD, as_of=AS_OF)[
        member.pk
    ]
    assert (result.previous_tier, result.tier, result.new_claims) == (1, 5, (1, 2, 3, 4, 5))
    assert result.tier_changed
    claims = TierBadgeClaim.objects.filter(member=member).order_by("tier")
    assert [c.tier for c in claims] == [1, 2, 3, 4, 5]
    assert {c.total_at_claim for c in claims} == {155_000}
    change = TierChange.objects.get(member=member)
    assert (change.from_tier, change.to_tier, change.cause) == (1, 5, "award")
    assert change.total_score == 155_000


def test_tier_drop_keeps_claims_and_records_the_move(member):
    _metrics(member, award_points=65_000)
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    MemberMetrics.objects.filter(member=member).update(award_points=10)
    result = scores_refresh(member_ids=[member.pk], cause=TierChange.Cause.REVOCATION, as_of=AS_OF)[
        member.pk
    ]
    assert (result.previous_tier, result.tier, result.new_claims) == (3, 1, ())
    assert sorted(TierBadgeClaim.objects.values_list("tier", flat=True)) == [1, 2, 3]
    moves = list(TierChange.objects.order_by("id").values_list("from_tier", "to_tier", "cause"))
    assert moves == [(1, 3, "activity"), (3, 1, "revocation")]
    # Climbing back claims nothing new (claims are permanent) but records the move.
    MemberMetrics.objects.filter(member=member).update(award_points=70_000)
    result = scores_refresh(member_ids=[member.pk], as_of=AS_OF)[member.pk]
    assert (result.tier, result.new_claims) == (3, ())
    assert TierChange.objects.count() == 3
    assert TierBadgeClaim.objects.count() == 3


def test_unchanged_total_writes_no_history(member):
    _metrics(member, counts={"model": 3}, dates=_days(1))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    first = UserScore.objects.get(member=member).computed_at
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    assert ScoreHistory.objects.count() == 1
    assert UserScore.objects.get(member=member).computed_at >= first


def test_refresh_reads_live_metrics_not_the_snapshot_copy(member):
    _metrics(member, award_points=100)
    # The snapshot was queued with an older award figure; the grant committed afterwards.
    MetricsSnapshot.objects.create(member=member, award_points=0, enqueued_at=timezone.now())
    assert scores_process_batch(as_of=AS_OF) == 1
    assert UserScore.objects.get(member=member).total_score == 100


def test_batch_scores_each_member_once_and_marks_snapshots(member):
    other = UserFactory()
    _metrics(member, counts={"model": 2}, dates=_days(1))
    _metrics(other, counts={"vault": 1}, dates=_days(1))
    for m in (member, member, other):
        _snapshot(m)
    assert scores_process_batch(as_of=AS_OF) == 2
    assert not MetricsSnapshot.objects.filter(processed_at__isnull=True).exists()
    assert ScoreHistory.objects.count() == 2
    run = PipelineRun.objects.get(kind="score_batch")
    assert (run.runs, run.last_count) == (1, 2)


def test_batch_second_run_is_a_no_op(member):
    _metrics(member, counts={"model": 2}, dates=_days(1))
    _snapshot(member)
    assert scores_process_batch(as_of=AS_OF) == 1
    score = UserScore.objects.get(member=member)
    with CaptureQueriesContext(connection) as queries:
        assert scores_process_batch(as_of=AS_OF) == 0
    # The only write statement is the claim itself (on PostgreSQL an UPDATE ... RETURNING),
    # and it matched no row.
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "FOR UPDATE SKIP LOCKED" not in q["sql"]
    ]
    assert writes == []
    assert len(queries.captured_queries) <= 3  # BEGIN/claim/COMMIT or the savepoint forms
    assert ScoreHistory.objects.count() == 1
    assert UserScore.objects.get(member=member).computed_at == score.computed_at
    assert PipelineRun.objects.get(kind="score_batch").runs == 1


def test_batch_loops_over_several_claims(settings):
    settings.SCORE_BATCH_SIZE = 3
    members = members_batch(7)
    for m in members:
        _metrics(m, counts={"data": 1}, dates=_days(1))
        _snapshot(m)
    assert scores_process_batch(as_of=AS_OF) == 7
    assert UserScore.objects.count() == 7
    assert not MetricsSnapshot.objects.filter(processed_at__isnull=True).exists()


def _refresh_queries(n: int) -> int:
    members = members_batch(n)
    for i, m in enumerate(members):
        # A spread of scores so some members jump tiers, some get history, some neither.
        _metrics(
            m,
            counts={"model": i + 1, "workflow": 3},
            dates=_days(i % 9 + 1),
            award_points=(i % 4) * 30_000,
        )
        _snapshot(m)
    with CaptureQueriesContext(connection) as queries:
        assert scores_process_batch(as_of=AS_OF) == n
    return len(queries.captured_queries)


def test_batch_query_count_does_not_grow_with_members(django_assert_max_num_queries):
    small = _refresh_queries(5)
    MetricsSnapshot.objects.all().delete()
    large = _refresh_queries(200)
    assert large == small
    # The fixed budget, printed with the SQL if it is ever exceeded.
    MetricsSnapshot.objects.all().delete()
    members = members_batch(20)
    for m in members:
        _snapshot(m)
    with django_assert_max_num_queries(small):
        scores_process_batch(as_of=AS_OF)
