"""Rescoring under a rules version: dry run, apply, re-run, jobs and the command."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from awards.models import Award
from awards.services import award_grant
from scoring.models import (
    MemberMetrics,
    RescoreJob,
    ScoreHistory,
    ScoringRules,
    TierBadgeClaim,
    TierChange,
    UserScore,
)
from scoring.rescore import rescore_apply, rescore_dry_run, rescore_job_create, rescore_job_run
from scoring.rules import rules_in_force
from scoring.scores import scores_refresh, utc_today
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

WORKED = {"model": 30, "workflow": 120, "data": 5}


def _member(name, *, counts, days, award=0):
    member = UserFactory(username=name, password=None)
    today = utc_today()
    MemberMetrics.objects.create(
        member=member,
        event_counts=counts,
        active_dates=[(today - timedelta(days=i)).isoformat() for i in range(days)],
        total_events=sum(counts.values()),
    )
    scores_refresh(member_ids=[member.pk])
    if award:
        award_grant(
            recipient=member,
            points=award,
            reason="Mapped the whole fen",
            idempotency_key=f"{name}-award",
            granted_by=None,
            source="form",
        )
    return member


@pytest.fixture
def community(db):
    """Three members under version 1, and a version 2 doubling base points and cap.

    ada: activity 1755 + 17,000 awards = 18,755 (tier 1); under v2 3,334 → 20,334 (tier 2).
    bo: one small group (10 x 10 + 50 = 150 → 162 x 13/12); v2 doubles the base, no tier move.
    cy: no activity at all: 0 under both versions.
    """
    members = {
        "ada": _member("ada", counts=WORKED, days=5, award=17_000),
        "bo": _member("bo", counts={"data": 10}, days=1),
        "cy": _member("cy", counts={}, days=0),
    }
    ScoringRules.objects.create(version=2, base_points=20, group_cap=2000, note="doubled")
    return members


def _state() -> dict:
    return {
        "scores": sorted(
            UserScore.objects.values_list(
                "member_id", "total_score", "tier", "rules_version", "award_points"
            )
        ),
        "history": ScoreHistory.objects.count(),
        "changes": sorted(TierChange.objects.values_list("member_id", "to_tier", "cause")),
        "claims": sorted(TierBadgeClaim.objects.values_list("member_id", "tier")),
        "awards": sorted(Award.objects.values_list("id", "points")),
        "rules": sorted(ScoringRules.objects.values_list("version", "activated_at")),
    }


def test_dry_run_reports_and_writes_nothing(community):
    before = _state()
    report = rescore_dry_run(version=2)
    assert _state() == before
    assert report.summary() == {
        "members": 3,
        "changed": 2,
        "up": 2,
        "down": 0,
        "tier_changes": 1,
        "applied": False,
    }
    top = report.movers[0]
    assert (top.username, top.old_total, top.new_total) == ("ada", 18_755, 20_334)
    assert [(m.username, m.old_tier, m.new_tier) for m in report.tier_moves] == [("ada", 1, 2)]


def test_apply_writes_the_version_one_rules_change_per_moved_member(community):
    awards_before = sorted(Award.objects.values_list("id", "points"))
    history_before = ScoreHistory.objects.count()
    report = rescore_apply(version=2)
    assert report.summary()["applied"] is True
    assert report.summary()["changed"] == 2
    assert rules_in_force().version == 2
    assert set(UserScore.objects.values_list("rules_version", flat=True)) == {2}
    ada = community["ada"]
    score = UserScore.objects.get(member=ada)
    assert (score.total_score, score.tier, score.award_points) == (20_334, 2, 17_000)
    assert list(TierChange.objects.filter(cause="rules").values_list("member_id", "to_tier")) == [
        (ada.pk, 2)
    ]
    new_history = ScoreHistory.objects.order_by("id")[history_before:]
    assert sorted(h.member.username for h in new_history) == ["ada", "bo"]
    assert {h.rules_version for h in new_history} == {2}
    assert sorted(Award.objects.values_list("id", "points")) == awards_before
    assert TierBadgeClaim.objects.filter(member=ada, tier=2).exists()


def test_apply_twice_is_apply_once(community):
    rescore_apply(version=2)
    after_once = _state()
    again = rescore_apply(version=2)
    assert _state() == after_once
    assert again.summary() == {
        "members": 3,
        "changed": 0,
        "up": 0,
        "down": 0,
        "tier_changes": 0,
        "applied": True,
    }


def test_going_back_lowers_the_tier_but_keeps_the_claim(community):
    rescore_apply(version=2)
    report = rescore_apply(version=1)
    ada = community["ada"]
    assert report.summary()["down"] == 2
    assert UserScore.objects.get(member=ada).tier == 1
    assert TierBadgeClaim.objects.filter(member=ada, tier=2).exists()
    assert list(
        TierChange.objects.filter(member=ada, cause="rules").values_list("from_tier", "to_tier")
    ) == [(1, 2), (2, 1)]


def test_the_explanation_follows_the_applied_version(client, community):
    rescore_apply(version=2)
    body = client.get("/api/u/ada/score/explain").json()
    assert body["rules_version"] == 2
    assert body["base_points"] == 2700
    assert body["activity_score"] == 3334
    assert body["total_score"] == 20_334


def test_command_prints_members_then_the_summary_line(community):
    out = StringIO()
    call_command("rescore", "--rules", "2", "--dry-run", stdout=out, stderr=StringIO())
    lines = out.getvalue().strip().splitlines()
    assert json.loads(lines[-1]) == {
        "members": 3,
        "changed": 2,
        "up": 2,
        "down": 0,
        "tier_changes": 1,
        "applied": False,
    }
    assert "ada: 18755 → 20334 (tier 1 → 2)" in lines
    assert UserScore.objects.filter(rules_version=2).count() == 0

    out = StringIO()
    call_command("rescore", "--rules", "2", stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue().strip().splitlines()[-1])["applied"] is True
    assert UserScore.objects.filter(rules_version=2).count() == 3


def test_command_refuses_an_unknown_version(community):
    with pytest.raises(CommandError, match="no scoring rules version 9"):
        call_command("rescore", "--rules", "9", "--dry-run", stdout=StringIO())


def test_a_job_runs_once_and_records_its_report(community, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = rescore_job_create(version=2, kind=RescoreJob.Kind.DRY_RUN)
    assert len(callbacks) == 1  # the task is sent on commit
    assert rescore_job_run(job_id=job.pk) == 3
    job.refresh_from_db()
    assert (job.state, job.members_done, job.report["changed"]) == ("done", 3, 2)
    assert job.report["movers"][0]["username"] == "ada"
    # A second delivery of the same task does nothing.
    assert rescore_job_run(job_id=job.pk) == 0
