"""``GET /api/u/<username>/score`` (SPEC §8)."""

from datetime import datetime, timedelta

import pytest

from scoring.models import MemberMetrics
from scoring.scores import scores_refresh, utc_today
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_score_json_has_the_spec_shape(client, member, django_assert_num_queries):
    today = utc_today()
    MemberMetrics.objects.create(
        member=member,
        event_counts={"model": 30, "workflow": 120, "data": 5},
        active_dates=[(today - timedelta(days=i)).isoformat() for i in range(5)],
        award_points=20_000,
    )
    scores_refresh(member_ids=[member.pk])
    with django_assert_num_queries(1):
        response = client.get(f"/api/u/{member.username}/score")
    assert response.status_code == 200
    body = response.json()
    computed_at = datetime.fromisoformat(body.pop("computed_at"))
    assert computed_at.tzinfo is not None
    assert body == {
        "username": member.username,
        "total_score": 21_755,
        "activity_score": 1755,
        "award_points": 20_000,
        "tier": {"ordinal": 2, "name": "Murk Lurker"},
        "streak_days": 5,
    }


def test_member_not_scored_yet_answers_zeros(client, member):
    body = client.get(f"/api/u/{member.username}/score").json()
    assert body == {
        "username": member.username,
        "total_score": 0,
        "activity_score": 0,
        "award_points": 0,
        "tier": {"ordinal": 1, "name": "Sludge Whelp"},
        "streak_days": 0,
        "computed_at": None,
    }


def test_unknown_or_inactive_member_is_404_json(client):
    response = client.get("/api/u/nobody-here/score")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}
    gone = UserFactory(is_active=False)
    assert client.get(f"/api/u/{gone.username}/score").status_code == 404


def test_only_get_is_allowed(client, member):
    assert client.post(f"/api/u/{member.username}/score").status_code == 405
