"""The staff scoring-rules page: versions, a dry run job, applying as a Celery job."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission

from scoring.models import MemberMetrics, RescoreJob, ScoringRules, TierChange, UserScore
from scoring.rescore import rescore_job_run
from scoring.rules import rules_get, rules_in_force
from scoring.scores import scores_refresh, utc_today
from tests.factories import UserFactory

# The real-worker fixtures (Celery subprocesses on the test database and this Redis db).
from tests.scoring.test_pipeline_integration import (
    _worker_args,
    celery_env,  # noqa: F401 (a fixture start_celery uses)
    start_celery,  # noqa: F401 (a fixture)
    wait_for,
)

pytestmark = pytest.mark.django_db

URL = "/staff/rescore/"


def _perm(user, codename: str) -> None:
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="scoring", codename=codename)
    )


@pytest.fixture
def rules_staff(staff_user):
    _perm(staff_user, "view_scoringrules")
    return staff_user


@pytest.fixture
def scored(db):
    rules_get(version=1)
    today = utc_today()
    for name, groups in (("bog", {"model": 40}), ("fen", {"data": 3}), ("mire", {})):
        member = UserFactory(username=name, password=None)
        MemberMetrics.objects.create(
            member=member,
            event_counts=groups,
            active_dates=[(today - timedelta(days=i)).isoformat() for i in range(3)],
        )
        scores_refresh(member_ids=[member.pk])
    return ScoringRules.objects.create(version=2, base_points=30, note="triple points")


def test_page_lists_versions_with_the_one_in_force(client, rules_staff, scored):
    client.force_login(rules_staff)
    html = client.get(URL).content.decode()
    assert "triple points" in html
    assert html.count('badge-ok">in force<') == 1
    assert 'value="dry_run"' in html
    assert 'value="apply"' not in html  # no change permission


def test_dry_run_job_reports_without_writing(
    client, rules_staff, scored, django_capture_on_commit_callbacks
):
    client.force_login(rules_staff)
    before = sorted(UserScore.objects.values_list("member_id", "total_score", "rules_version"))
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(URL, {"version": "2", "kind": "dry_run"})
    job = RescoreJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/staff/rescore/{job.pk}/"
    assert job.kind == "dry_run"
    rescore_job_run(job_id=job.pk)
    page = client.get(response["Location"]).content.decode()
    assert "A dry run: nothing was written." in page
    assert '<a href="/staff/members/bog/">bog</a>' in page
    assert sorted(UserScore.objects.values_list("member_id", "total_score", "rules_version")) == (
        before
    )
    assert rules_in_force().version == 1


def test_polling_gets_the_job_fragment(client, rules_staff, scored):
    client.force_login(rules_staff)
    job = RescoreJob.objects.create(rules=scored, kind="apply", members_total=3)
    response = client.get(
        f"/staff/rescore/{job.pk}/", headers={"HX-Request": "true", "HX-Target": "rescore-job"}
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="rescore-job"')
    assert 'hx-trigger="every 1s"' in html


def test_apply_needs_the_change_permission(client, rules_staff, scored):
    client.force_login(rules_staff)
    assert client.post(URL, {"version": "2", "kind": "apply"}).status_code == 403
    assert not RescoreJob.objects.exists()


def test_an_unknown_version_is_a_form_error(client, rules_staff, scored):
    client.force_login(rules_staff)
    response = client.post(URL, {"version": "9", "kind": "dry_run"})
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()


def test_staff_without_the_permission_get_403(staff_client, scored):
    assert staff_client.get(URL).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_apply_runs_on_a_real_worker(client, staff_user, scored, start_celery):  # noqa: F811
    _perm(staff_user, "view_scoringrules")
    _perm(staff_user, "change_scoringrules")
    client.force_login(staff_user)
    start_celery(*_worker_args())
    assert client.post(URL, {"version": "2", "kind": "apply"}).status_code == 302
    job = RescoreJob.objects.get()
    wait_for(
        lambda: RescoreJob.objects.filter(pk=job.pk, state="done").exists(),
        timeout=120,
        what="the worker to apply the rules",
    )
    job.refresh_from_db()
    assert job.members_done == 3
    assert job.report["applied"] is True
    assert set(UserScore.objects.values_list("rules_version", flat=True)) == {2}
    assert rules_in_force().version == 2
    moved = job.report["tier_changes"]
    assert TierChange.objects.filter(cause="rules").count() == moved
