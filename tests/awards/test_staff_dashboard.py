"""The staff dashboard (/staff/): pipeline health and recent activity panels."""

from datetime import timedelta

import pytest
from django.utils import timezone

from scoring.models import PipelineRun, TierChange
from staff.selectors.dashboard import pipeline_health
from tests.factories import (
    AwardFactory,
    AwardRevocationFactory,
    TelemetryEventFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_dashboard_shows_queues_runs_worker_and_recent_activity(staff_client, member):
    now = timezone.now()
    TelemetryEventFactory.create_batch(3, member=member)
    TelemetryEventFactory(member=member, status="rejected", error="startedAt is not ISO-8601")
    PipelineRun.objects.create(
        kind="consume", last_started_at=now, last_finished_at=now, last_count=42, runs=7
    )
    PipelineRun.objects.create(kind="worker", last_finished_at=now - timedelta(seconds=30))
    AwardFactory(recipient=member, reason="Hosted the bog walk")
    TierChange.objects.create(
        member=member, from_tier=1, to_tier=2, cause="award", total_score=20_000, changed_at=now
    )
    response = staff_client.get("/staff/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'hx-trigger="every 10s"' in html
    assert "Pending events</dt><dd>3<" in html
    assert "Rejected events</dt><dd>1<" in html
    assert "startedAt is not ISO-8601" in html
    assert "answering" in html
    assert "not answering" not in html
    assert "Hosted the bog walk" in html
    assert "Murk Lurker" in html
    assert "never ran" in html  # the score batch has no run yet


def test_health_panel_polls_alone(staff_client, htmx_headers):
    response = staff_client.get("/staff/", headers={**htmx_headers, "HX-Target": "health"})
    html = response.content.decode()
    assert html.strip().startswith('<section id="health"')
    assert 'id="activity"' not in html
    assert "<html" not in html


def test_activity_panel_polls_alone(staff_client, member, htmx_headers):
    AwardFactory(recipient=member, reason="Answered every question")
    response = staff_client.get("/staff/", headers={**htmx_headers, "HX-Target": "activity"})
    html = response.content.decode()
    assert html.strip().startswith('<div id="activity"')
    assert "Answered every question" in html
    assert 'id="health"' not in html


def test_worker_not_answering_after_90_seconds():
    now = timezone.now()
    PipelineRun.objects.create(kind="worker", last_finished_at=now - timedelta(seconds=91))
    health = pipeline_health(now=now)
    assert not health.worker_alive
    PipelineRun.objects.filter(kind="worker").update(last_finished_at=now - timedelta(seconds=89))
    assert pipeline_health(now=now).worker_alive


def test_stage_is_late_after_three_intervals(settings):
    settings.CONSUME_INTERVAL_S = 30
    now = timezone.now()
    PipelineRun.objects.create(kind="consume", last_finished_at=now - timedelta(seconds=89))
    states = {s.kind: s.state for s in pipeline_health(now=now).stages}
    assert states == {"consume": "ok", "score_batch": "never", "worker": "never"}
    PipelineRun.objects.filter(kind="consume").update(last_finished_at=now - timedelta(seconds=91))
    assert pipeline_health(now=now).stages[0].state == "late"


def test_queue_counts_are_capped(staff_client, member, monkeypatch):
    monkeypatch.setattr("staff.selectors.dashboard.COUNT_CAP", 4)
    monkeypatch.setattr("staff.templatetags.staff_extras.COUNT_CAP", 4)
    TelemetryEventFactory.create_batch(6, member=member)
    assert pipeline_health().pending_events == 5
    html = staff_client.get("/staff/").content.decode()
    assert "Pending events</dt><dd>4+<" in html


def test_plain_staff_may_view_the_dashboard_but_members_may_not(client, member):
    assert client.get("/staff/").status_code == 302
    client.force_login(member)
    assert client.get("/staff/").status_code == 403
    client.force_login(UserFactory(username="plainstaff", staff=True))
    assert client.get("/staff/").status_code == 200


@pytest.mark.parametrize("rows", [3, 60])
def test_query_count_does_not_grow_with_rows(
    staff_client, member, rows, django_assert_max_num_queries
):
    granter = UserFactory(username="heron", staff=True)
    for index in range(rows):
        award = AwardFactory(recipient=UserFactory(), granted_by=granter)
        if index % 2:
            AwardRevocationFactory(award=award)
        TelemetryEventFactory(member=member, status="rejected", error="bad")
        TierChange.objects.create(
            member=award.recipient,
            from_tier=1,
            to_tier=2,
            cause="award",
            total_score=20_000,
            changed_at=timezone.now(),
        )
    # Session, user, permissions (2), three capped counts, the oldest pending event, stage
    # runs, rejections, awards, tier changes, dead webhook deliveries; the clients panel:
    # versions, drift, late.
    with django_assert_max_num_queries(16):
        response = staff_client.get("/staff/")
    assert response.status_code == 200
