"""Explainable scores: what the score writer stores, the explanation and its JSON."""

import importlib
from datetime import date, timedelta
from fractions import Fraction
from math import floor

import pytest
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from awards.services import award_grant, award_revoke
from members.explain import score_explanation_for_member
from scoring.explain import ExplanationUnavailable, activity_explanation
from scoring.formula import exact_text
from scoring.models import MemberMetrics, ScoreHistory, ScoringRules, UserScore
from scoring.scores import scores_refresh
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 24)
WORKED = {"model": 30, "workflow": 120, "data": 5}


def _days(n: int, end: date = AS_OF) -> list[str]:
    return [(end - timedelta(days=i)).isoformat() for i in range(n)]


def _metrics(member, *, counts, dates, award_points=0) -> None:
    MemberMetrics.objects.update_or_create(
        member=member,
        defaults={
            "event_counts": counts,
            "active_dates": sorted(dates),
            "total_events": sum(counts.values()),
            "award_points": award_points,
        },
    )


def _grant(member, points, *, public=True, key="k"):
    return award_grant(
        recipient=member,
        points=points,
        reason=f"Reason for {key}",
        idempotency_key=key,
        granted_by=None,
        source="form",
        public=public,
    ).award


def test_exact_text_is_a_decimal_when_exact_else_a_fraction():
    assert exact_text(Fraction(26, 25)) == "1.04"
    assert exact_text(Fraction(16, 15)) == "16/15"
    assert exact_text(Fraction(3, 2)) == "1.5"
    assert exact_text(Fraction(1)) == "1"
    assert exact_text(Fraction(13, 12)) == "13/12"
    assert exact_text(Fraction(1, 8)) == "0.125"


def test_the_writer_stores_version_as_of_and_inputs(member):
    _metrics(member, counts=WORKED, dates=_days(5))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    score = UserScore.objects.get(member=member)
    assert score.rules_version == 1
    assert score.as_of == AS_OF
    assert score.breakdown == {"counts": WORKED, "rolling_days": 5}
    assert ScoreHistory.objects.get(member=member).rules_version == 1


def test_worked_example_json_has_the_spec_shape(client, member):
    _metrics(member, counts=WORKED, dates=_days(5))
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    body = client.get(f"/api/u/{member.username}/score/explain").json()
    assert body == {
        "username": member.username,
        "rules_version": 1,
        "as_of": "2026-11-24",
        "groups": [
            {"group": "data", "count": 5, "points": 50, "capped_points": 50},
            {"group": "model", "count": 30, "points": 300, "capped_points": 300},
            {"group": "workflow", "count": 120, "points": 1200, "capped_points": 1000},
        ],
        "base_points": 1350,
        "diversity_points": 150,
        "streak": {"days": 5, "multiplier": "1.08"},
        "rolling": {"active_days": 5, "multiplier": "13/12"},
        "activity_score": 1755,
        "awards": [],
        "award_points": 0,
        "total_score": 1755,
    }


def test_explanation_uses_the_stored_figures_not_today(client, member):
    # Computed long ago: today the streak is broken and the window is empty, but the
    # stored score (and so its explanation) is the one computed as of that day.
    long_ago = date(2025, 1, 10)
    _metrics(member, counts=WORKED, dates=_days(5, long_ago))
    scores_refresh(member_ids=[member.pk], as_of=long_ago)
    body = client.get(f"/api/u/{member.username}/score/explain").json()
    assert body["as_of"] == "2025-01-10"
    assert body["streak"] == {"days": 5, "multiplier": "1.08"}
    assert body["activity_score"] == 1755 == UserScore.objects.get(member=member).activity_score


def test_awards_are_listed_with_points_only_and_revoked_ones_do_not_count(client, member):
    _metrics(member, counts={"model": 3}, dates=_days(1))
    public = _grant(member, 300, key="a")
    private = _grant(member, 70, public=False, key="b")
    revoked = _grant(member, 1000, key="c")
    award_revoke(award=revoked, revoked_by=None, reason="granted by mistake")
    body = client.get(f"/api/u/{member.username}/score/explain").json()
    assert {a["id"]: a for a in body["awards"]} == {
        public.pk: {"id": public.pk, "points": 300, "revoked": False},
        private.pk: {"id": private.pk, "points": 70, "revoked": False},
        revoked.pk: {"id": revoked.pk, "points": 1000, "revoked": True},
    }
    assert body["award_points"] == 370
    assert body["total_score"] == body["activity_score"] + 370
    assert body["total_score"] == UserScore.objects.get(member=member).total_score
    assert "reason" not in str(body)


def test_private_reason_only_for_the_member_themself(member):
    _grant(member, 70, public=False, key="p")
    stranger = UserFactory()
    assert score_explanation_for_member(member=member, viewer=stranger).awards[0].reason is None
    own = score_explanation_for_member(member=member, viewer=member).awards[0]
    assert own.reason == "Reason for p"


def test_unknown_member_is_a_json_404(client):
    response = client.get("/api/u/nobody/score/explain")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_member_not_scored_yet_is_all_ones_and_zeros(client, member):
    body = client.get(f"/api/u/{member.username}/score/explain").json()
    assert body["activity_score"] == body["total_score"] == 0
    assert body["streak"]["multiplier"] == body["rolling"]["multiplier"] == "1"
    assert body["as_of"] is None


def test_explain_api_takes_a_constant_number_of_queries(
    client, member, django_assert_max_num_queries
):
    _metrics(member, counts=WORKED, dates=_days(5))
    for index in range(5):
        _grant(member, 10 + index, key=f"q{index}")
    with django_assert_max_num_queries(4):
        response = client.get(f"/api/u/{member.username}/score/explain")
    assert len(response.json()["awards"]) == 5


def test_a_score_written_under_a_scoring_override_stays_explained(member):
    _metrics(member, counts={"model": 500}, dates=_days(3))
    with override_settings(SCORING={"GROUP_CAP": 2000}):
        scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    score = UserScore.objects.get(member=member)
    assert score.breakdown["constants"]["GROUP_CAP"] == "2000"
    # The setting is gone; the explanation still uses the constants the score used.
    explained = activity_explanation(score=score)
    assert explained.groups[0].capped_points == 2000
    assert explained.activity_score == score.activity_score
    assert explained.overridden


def test_a_score_stored_before_explanations_is_explained_from_its_day(member):
    _metrics(member, counts=WORKED, dates=_days(5))
    scores_refresh(member_ids=[member.pk], as_of=timezone.now().date())
    UserScore.objects.filter(member=member).update(breakdown=None, as_of=None)
    explained = activity_explanation(score=UserScore.objects.get(member=member))
    assert explained.activity_score == UserScore.objects.get(member=member).activity_score
    # Metrics that moved on since cannot explain it: say so rather than show wrong lines.
    _metrics(member, counts={"model": 1}, dates=_days(1))
    with pytest.raises(ExplanationUnavailable):
        activity_explanation(score=UserScore.objects.get(member=member))


def test_rules_version_one_is_spec_section_six():
    # The data migration's function (a flushing test elsewhere may have emptied the table).
    from django.apps import apps

    migration = importlib.import_module("scoring.migrations.0003_i15_scoring_rules")
    migration._create_version_1(apps, None)
    rules = ScoringRules.objects.get(version=1)
    assert (rules.base_points, rules.group_cap, rules.diversity_bonus) == (10, 1000, 50)
    assert str(rules.streak_step) == "0.020000"
    assert rules.rolling_days == 30
    assert rules.activated_at is not None


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    counts=st.dictionaries(
        st.sampled_from(["model", "workflow", "data", "vault", "Serve", "auth"]),
        st.integers(min_value=0, max_value=500),
        max_size=6,
    ),
    offsets=st.sets(st.integers(min_value=-3, max_value=60), max_size=40),
    awards=st.lists(st.tuples(st.integers(1, 5000), st.booleans()), max_size=4),
)
def test_explanation_lines_add_up_to_the_stored_score(member, counts, offsets, awards):
    MemberMetrics.objects.filter(member=member).delete()
    dates = [(AS_OF - timedelta(days=o)).isoformat() for o in offsets]
    award_points = sum(points for points, revoked in awards if not revoked)
    _metrics(member, counts=counts, dates=dates, award_points=award_points)
    scores_refresh(member_ids=[member.pk], as_of=AS_OF)
    score = UserScore.objects.get(member=member)
    e = activity_explanation(score=score)
    assert e.base_points == sum(line.capped_points for line in e.groups)
    assert all(line.capped_points == min(line.points, line.cap) for line in e.groups)
    assert all(line.points == line.count * 10 for line in e.groups)
    assert e.diversity_points == 50 * len(e.groups)
    product = (e.base_points + e.diversity_points) * e.streak_multiplier * e.rolling_multiplier
    assert floor(product) == e.activity_score == score.activity_score
    assert e.activity_score + score.award_points == score.total_score
    assert e.as_of == AS_OF
    assert e.rules_version == 1
