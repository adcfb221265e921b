"""The member pages fed by the real award and scoring services (no hand-written scores)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from awards.services import award_grant, award_revoke
from members import leaderboard
from scoring.models import ScoreHistory, UserScore
from tests.factories import MemberMetricsFactory, UserFactory
from tests.members.test_profile import breakdown_numbers

pytestmark = pytest.mark.django_db


def grant(recipient, granter, points, key, **extra):
    return award_grant(
        recipient=recipient,
        points=points,
        reason=f"Recognised for {key}",
        idempotency_key=key,
        granted_by=granter,
        source="form",
        **extra,
    ).award


def test_dormant_member_gains_exactly_this_weeks_award(client, staff_user):
    sleeper = UserFactory(username="sleeper")
    MemberMetricsFactory(member=sleeper, event_counts={"model": 30}, total_events=30)
    grant(sleeper, staff_user, 4_000, "old-deed")
    # A year passes: the history written by that grant is now a year old.
    ScoreHistory.objects.filter(member=sleeper).update(
        recorded_at=timezone.now() - timedelta(days=365)
    )
    before = UserScore.objects.get(member=sleeper).total_score
    grant(sleeper, staff_user, 750, "this-week")

    now = timezone.now()
    for window in ("7d", "30d"):
        page = leaderboard.leaderboard_page(window=window, now=now)
        assert [(e.username, e.gain) for e in page.entries] == [("sleeper", 750)]
    body = client.get("/api/leaderboard?window=7d").json()
    assert body["entries"][0]["gain"] == 750
    assert body["entries"][0]["total_score"] == before + 750


def test_revocation_shows_as_a_loss_and_the_breakdown_still_sums(client, staff_user):
    member = UserFactory(username="unlucky")
    MemberMetricsFactory(member=member, event_counts={"workflow": 12}, total_events=12)
    kept = grant(member, staff_user, 300, "kept", public=False, staff_note="wardens only")
    lost = grant(member, staff_user, 5_000, "lost")
    ScoreHistory.objects.filter(member=member).update(
        recorded_at=timezone.now() - timedelta(days=60)
    )
    award_revoke(award=lost, revoked_by=staff_user, reason="Granted to the wrong member")

    page = leaderboard.leaderboard_page(window="7d", now=timezone.now())
    assert page.entries[0].gain == -5_000

    score = UserScore.objects.get(member=member)
    html = client.get("/u/unlucky/").content.decode()
    numbers = breakdown_numbers(html)
    assert numbers["awards"] == 300
    assert numbers["activity"] + numbers["awards"] == numbers["total"] == score.total_score
    assert "wardens only" not in html
    assert kept.reason not in html  # private: its reason is the recipient's alone
    client.force_login(member)
    assert kept.reason in client.get("/u/unlucky/").content.decode()
