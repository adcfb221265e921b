"""``manage.py seed_demo``: realistic data through the real pipeline, idempotent."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from members.management.commands.seed_demo import HANDLES
from scoring.management.commands.demo_login import DEMO_STAFF_USERNAME
from scoring.models import (
    ApiKey,
    MemberMetrics,
    MetricsSnapshot,
    ScoreHistory,
    TelemetryEvent,
    UserScore,
)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_seed_demo_runs_the_pipeline_and_is_idempotent():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "demo members: 40 (40 new, 40 new API keys)" in out.getvalue()

    users = get_user_model().objects
    warden = users.get(username=DEMO_STAFF_USERNAME)
    assert warden.is_staff
    assert warden.has_perm("awards.add_award")
    assert users.filter(username__in=HANDLES).count() == len(HANDLES) == 40
    assert ApiKey.objects.filter(owner__username__in=HANDLES).count() == 40

    events = TelemetryEvent.objects.count()
    assert events > 5000
    assert not TelemetryEvent.objects.with_status().exclude(status="processed").exists()
    assert not MetricsSnapshot.objects.filter(processed_at__isnull=True).exists()
    assert sum(MemberMetrics.objects.values_list("total_events", flat=True)) == events
    groups = set()
    for counts in MemberMetrics.objects.values_list("event_counts", flat=True):
        groups |= set(counts)
    assert {"model", "workflow", "data", "vault", "extension", "auth"} <= groups
    scores = list(UserScore.objects.filter(username__in=HANDLES))
    assert len(scores) == 40
    assert all(s.total_score > 0 for s in scores)
    assert any(s.streak_days >= 5 for s in scores)  # live streaks
    assert any(s.streak_days == 0 for s in scores)  # and broken ones
    assert len({s.total_score for s in scores}) > 30  # a spread, not one number
    # A real history: every demo member's score as of each past day of activity, so each
    # profile chart has a line of more than one point; accounts joined before their first
    # event, and awards came after joining.
    for member in users.filter(username__in=HANDLES):
        recorded = list(
            ScoreHistory.objects.filter(member=member)
            .order_by("recorded_at")
            .values_list("recorded_at", "total_score")
        )
        assert len(recorded) > 1, member.username
        assert recorded[-1][1] == member.score.total_score
        first_event = min(
            TelemetryEvent.objects.filter(member=member).values_list("timestamp", flat=True)
        )
        assert member.date_joined < first_event
        assert recorded[0][0].date() == first_event.date()
        for granted_at in member.awards_received.values_list("granted_at", flat=True):
            assert member.date_joined < granted_at
    first_sample = sorted(TelemetryEvent.objects.values_list("insert_id", flat=True))[:5]
    history = ScoreHistory.objects.count()

    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "(0 new, 0 new API keys); events: 0 new" in out.getvalue()
    assert "consumed 0; scored 0" in out.getvalue()
    assert TelemetryEvent.objects.count() == events
    assert ScoreHistory.objects.count() == history
    assert sorted(TelemetryEvent.objects.values_list("insert_id", flat=True))[:5] == first_sample

    out = StringIO()
    call_command("check_ledger", stdout=out)
    assert out.getvalue().strip() == "ledger ok"
