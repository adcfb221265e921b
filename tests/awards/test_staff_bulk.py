"""Bulk grant (/staff/awards/bulk): parsing, dry run, confirm, re-upload, large files as a task."""

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from awards import bulk
from awards.bulk import bulk_dry_run, bulk_job_confirm, bulk_job_run, bulk_jobs_resume, bulk_parse
from awards.bulk import jobs as bulk_jobs
from awards.bulk import parse as bulk_csv
from awards.models import Award, BulkGrantJob
from awards.services import award_grant
from scoring.models import MemberMetrics, TierChange, UserScore
from tests.factories import UserFactory

# The real-worker fixtures (Celery subprocesses on the test database and this Redis db).
from tests.scoring.test_pipeline_integration import (
    _worker_args,
    celery_env,  # noqa: F401 (a fixture start_celery uses)
    start_celery,  # noqa: F401 (a fixture)
    wait_for,
)

pytestmark = pytest.mark.django_db

URL = "/staff/awards/bulk"


def upload(content: str, name: str = "spring.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


@pytest.fixture
def members(db):
    return {name: UserFactory(username=name) for name in ("bog", "fen", "heron")}


GOOD = (
    "username,points,reason,category,award_id\n"
    "bog,500,Ran the spring meetup,event,meetup-bog\n"
    "fen,250,Wrote the swamp guide,content,\n"
    "heron,100,Reported the parser crash,bug_report,\n"
)


def test_page_renders_upload_form(staff_client):
    response = staff_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'type="file"' in html
    assert 'enctype="multipart/form-data"' in html


def test_dry_run_grants_nothing_and_reports_totals(staff_client, members):
    response = staff_client.post(URL, {"file": upload(GOOD)})
    assert response.status_code == 200
    html = response.content.decode()
    assert not Award.objects.exists()
    report = response.context["report"]
    assert report.ok
    assert len(report.new_rows) == 3
    assert report.total_points == 850
    assert "850" in html
    assert 'name="token"' in html
    assert BulkGrantJob.objects.get().status == "dry_run"


def test_confirm_by_token_grants_once_and_redirects_to_the_job(staff_client, members):
    dry = staff_client.post(URL, {"file": upload(GOOD)})
    token = dry.context["report"].job.token
    response = staff_client.post(URL, {"token": str(token)})
    assert response.status_code == 302
    assert response["Location"] == f"/staff/awards/bulk/{token}"
    assert Award.objects.count() == 3
    assert Award.objects.get(recipient=members["bog"]).idempotency_key == "meetup-bog"
    assert set(Award.objects.values_list("source", flat=True)) == {"bulk"}
    assert UserScore.objects.get(member=members["fen"]).total_score == 250
    job = BulkGrantJob.objects.get()
    assert (job.status, job.granted_count, job.processed_rows) == ("done", 3, 3)
    page = staff_client.get(response["Location"])
    assert "3 awards granted" in page.content.decode()
    # Confirming again (a double click) changes nothing.
    again = staff_client.post(URL, {"token": str(token)})
    assert again.status_code == 302
    assert Award.objects.count() == 3


def test_htmx_confirm_answers_the_job_fragment(staff_client, members, htmx_headers):
    dry = staff_client.post(URL, {"file": upload(GOOD)}, headers=htmx_headers)
    assert dry.status_code == 200
    assert "<html" not in dry.content.decode()
    token = dry.context["report"].job.token
    response = staff_client.post(URL, {"token": str(token)}, headers=htmx_headers)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="bulk-job"' in html
    assert "every 1s" not in html  # done: no more polling
    assert Award.objects.count() == 3


def test_file_with_confirm_grants_directly(staff_client, members):
    response = staff_client.post(URL, {"file": upload(GOOD), "confirm": "1"})
    assert response.status_code == 302
    assert Award.objects.count() == 3


def test_reuploading_the_same_file_grants_nothing_twice(staff_client, members):
    staff_client.post(URL, {"file": upload(GOOD), "confirm": "1"})
    totals = dict(MemberMetrics.objects.values_list("member__username", "award_points"))
    again = staff_client.post(URL, {"file": upload(GOOD, name="copy.csv")})
    report = again.context["report"]
    assert len(report.existing_rows) == 3
    assert not report.new_rows
    assert not report.ok
    assert "Nothing to grant" in again.content.decode()
    confirmed = staff_client.post(URL, {"file": upload(GOOD), "confirm": "1"})
    assert confirmed.status_code == 422
    assert Award.objects.count() == 3
    assert dict(MemberMetrics.objects.values_list("member__username", "award_points")) == totals


def test_same_rows_with_crlf_and_bom_are_the_same_file(members):
    first = bulk_parse(raw=GOOD.encode())
    second = bulk_parse(raw=b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert [r.key for r in first.rows] == [r.key for r in second.rows]
    assert first.rows[0].key == "meetup-bog"
    assert first.rows[1].key.startswith("bulk-")
    edited = bulk_parse(raw=GOOD.replace("250", "260").encode())
    assert edited.rows[1].key != first.rows[1].key


def test_dry_run_reports_every_row_problem_and_grants_nothing(staff_client, members):
    content = (
        "bog,500,Ran the spring meetup\n"
        "ghost,10,Not a member\n"
        "fen,many,Bad points\n"
        "heron,0,Zero points\n"
        "fen,10,ok\n"
        "fen,10,Fine reason,bribery\n"
        "warden,10,Self grant\n"
        "bog,10,Too,many,columns,here\n"
        "bog,20,Same id,event,dup-1\n"
        "bog,30,Same id other points,event,dup-1\n"
    )
    response = staff_client.post(URL, {"file": upload(content), "confirm": "1"})
    assert response.status_code == 422
    report = response.context["report"]
    errors = {row.number: " ".join(row.errors) for row in report.error_rows}
    assert "No member is called “ghost”" in errors[2]
    assert "not a whole number" in errors[3]
    assert "between 1 and" in errors[4]
    assert "at least 3 characters" in errors[5]
    assert "Category" in errors[6]
    assert "themselves" in errors[7]
    assert "columns" in errors[8]
    assert "earlier row" in errors[10]
    assert set(errors) == {2, 3, 4, 5, 6, 7, 8, 10}
    assert report.unknown_members == ["ghost"]
    html = response.content.decode()
    assert "Nothing was granted" in html
    assert 'name="token"' not in html
    assert not Award.objects.exists()
    assert not BulkGrantJob.objects.exists()


def test_duplicates_in_file_are_granted_once_and_twins_warned(staff_client, members):
    content = (
        "bog,20,Same award,event,dup-1\n"
        "bog,20,Same award,event,dup-1\n"
        "fen,5,Helped at the stand\n"
        "fen,5,Helped at the stand\n"
    )
    response = staff_client.post(URL, {"file": upload(content)})
    report = response.context["report"]
    assert [r.state for r in report.rows] == ["new", "duplicate", "new", "new"]
    assert report.rows[1].duplicate_of == 1
    assert "both will be granted" in report.rows[3].warning
    assert report.total_points == 30
    staff_client.post(URL, {"token": str(report.job.token)})
    assert Award.objects.filter(recipient=members["bog"]).count() == 1
    assert Award.objects.filter(recipient=members["fen"]).count() == 2


def test_dry_run_lists_members_whose_tier_would_change(staff_client, staff_user, members):
    award_grant(
        recipient=members["bog"],
        points=19_000,
        reason="Earlier work",
        idempotency_key="earlier",
        granted_by=staff_user,
        source="form",
    )
    response = staff_client.post(URL, {"file": upload("bog,1500,Big contribution\nfen,10,Small\n")})
    impacts = response.context["report"].tier_impacts
    assert [(i.username, i.current_total, i.new_total, i.new_tier.name) for i in impacts] == [
        ("bog", 19_000, 20_500, "Murk Lurker")
    ]
    assert "Murk Lurker" in response.content.decode()
    assert not TierChange.objects.filter(to_tier=2).exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\n \n", "no rows"),
        (b"username,points\nbog,5\n", "missing column(s) reason"),
        (b"username,points,reason,colour\nbog,5,Nice\n", "unknown column(s) colour"),
        (b"\xff\xfebog,5,x", "not UTF-8"),
        (b"bog,5,Nice\x00\n", "NUL"),
        (b'bog,5,"unterminated\n', "not valid CSV"),
    ],
)
def test_file_level_problems(staff_client, members, raw, message):
    file = SimpleUploadedFile("bad.csv", raw, content_type="text/csv")
    response = staff_client.post(URL, {"file": file})
    assert message in " ".join(response.context["report"].file_errors)
    assert not BulkGrantJob.objects.exists()


def test_too_big_and_too_many_rows(staff_client, members, monkeypatch):
    monkeypatch.setattr(bulk_csv, "MAX_ROWS", 2)
    response = staff_client.post(URL, {"file": upload(GOOD)})
    assert "at most 2" in " ".join(response.context["report"].file_errors)
    monkeypatch.setattr(bulk_csv, "MAX_BYTES", 10)
    response = staff_client.post(URL, {"file": upload(GOOD)})
    assert "larger than" in " ".join(response.context["report"].file_errors)


def test_header_columns_in_any_order_and_case_insensitive_usernames(members):
    report = bulk_parse(raw=b"reason,USERNAME,points\nGreat work,Bog,5\n")
    assert (report.rows[0].username, report.rows[0].points_text) == ("Bog", "5")
    staff = UserFactory(username="warden2", staff=True)
    checked = bulk.bulk_check(report=report, granted_by=staff)
    assert checked.rows[0].member == members["bog"]
    assert checked.ok


def test_missing_or_empty_file_is_422_beside_the_field(staff_client, htmx_headers):
    response = staff_client.post(URL, {}, headers=htmx_headers)
    assert response.status_code == 422
    assert "This field is required" in response.content.decode()
    empty = SimpleUploadedFile("empty.csv", b"", content_type="text/csv")
    response = staff_client.post(URL, {"file": empty}, headers=htmx_headers)
    assert response.status_code == 422
    assert "The submitted file is empty" in response.content.decode()


def test_unknown_expired_or_foreign_token_is_refused(staff_client, staff_user, members):
    response = staff_client.post(URL, {"token": str(uuid.uuid4())})
    assert response.status_code == 422
    assert "expired" in response.content.decode()
    other = UserFactory(username="egret", staff=True)
    report = bulk_dry_run(raw=GOOD.encode(), filename="x.csv", uploaded_by=other)
    assert staff_client.post(URL, {"token": str(report.job.token)}).status_code == 422
    assert staff_client.get(f"/staff/awards/bulk/{report.job.token}").status_code == 404
    BulkGrantJob.objects.update(updated_at="2000-01-01T00:00:00Z")
    mine = bulk_dry_run(raw=GOOD.encode(), filename="x.csv", uploaded_by=staff_user)
    BulkGrantJob.objects.filter(pk=mine.job.pk).update(updated_at="2000-01-01T00:00:00Z")
    assert staff_client.post(URL, {"token": str(mine.job.token)}).status_code == 422
    assert not Award.objects.exists()


def test_old_dry_runs_are_cleaned_up_by_the_next_upload(staff_user, members):
    old = bulk_dry_run(raw=GOOD.encode(), filename="old.csv", uploaded_by=staff_user)
    BulkGrantJob.objects.filter(pk=old.job.pk).update(updated_at="2000-01-01T00:00:00Z")
    bulk_dry_run(raw=GOOD.encode(), filename="new.csv", uploaded_by=staff_user)
    assert list(BulkGrantJob.objects.values_list("filename", flat=True)) == ["new.csv"]


def test_csrf_is_enforced(staff_user, members):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(URL, {"file": upload(GOOD), "confirm": "1"}).status_code == 403
    assert not Award.objects.exists()


def test_needs_grant_permission(client, members):
    assert client.get(URL).status_code == 302
    viewer = UserFactory(username="viewer", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_award"))
    client.force_login(viewer)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"file": upload(GOOD), "confirm": "1"}).status_code == 403
    assert not Award.objects.exists()


# --- large files: the awards.bulk_grant task -------------------------------------------------


def big_file(rows: int) -> str:
    return "".join(f"bog,1,Thanks for report number {n}\n" for n in range(rows))


def test_large_file_is_queued_and_granted_in_chunks_by_the_task(
    staff_client, members, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(bulk_jobs, "SYNC_MAX_ROWS", 5)
    monkeypatch.setattr(bulk_jobs, "CHUNK_ROWS", 4)
    sent = []
    monkeypatch.setattr("awards.tasks.bulk_grant_task.delay", sent.append)
    dry = staff_client.post(URL, {"file": upload(big_file(10))})
    token = dry.context["report"].job.token
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(URL, {"token": str(token)}, headers={"HX-Request": "true"})
    job = BulkGrantJob.objects.get()
    assert sent == [job.pk]
    assert job.status == "queued"
    assert not Award.objects.exists()
    html = response.content.decode()
    assert 'hx-trigger="every 1s"' in html  # the job fragment polls while it runs
    from awards.tasks import bulk_grant_task

    assert bulk_grant_task.run(job.pk) == 10
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.granted_count, job.skipped_count) == (
        "done",
        10,
        10,
        0,
    )
    assert MemberMetrics.objects.get(member=members["bog"]).award_points == 10
    poll = staff_client.get(
        f"/staff/awards/bulk/{token}", headers={"HX-Request": "true", "HX-Target": "bulk-job"}
    )
    assert "every 1s" not in poll.content.decode()
    assert "10 awards granted" in poll.content.decode()


def test_task_names_are_pinned_and_resume_is_scheduled(settings):
    from awards.tasks import bulk_grant_task, bulk_jobs_resume_task

    assert bulk_grant_task.name == "awards.bulk_grant"
    assert bulk_jobs_resume_task.name == "awards.bulk_jobs_resume"
    entry = settings.CELERY_BEAT_SCHEDULE["resume-bulk-grants"]
    assert entry["task"] == "awards.bulk_jobs_resume"
    assert entry["options"]["expires"] > 0


def test_interrupted_job_resumes_after_last_chunk_without_double_grants(
    staff_user, members, monkeypatch
):
    monkeypatch.setattr(bulk_jobs, "SYNC_MAX_ROWS", 1)
    monkeypatch.setattr(bulk_jobs, "CHUNK_ROWS", 3)
    report = bulk_dry_run(raw=big_file(7).encode(), filename="big.csv", uploaded_by=staff_user)
    monkeypatch.setattr("awards.tasks.bulk_grant_task.delay", lambda job_id: None)
    job = bulk_job_confirm(token=report.job.token, user=staff_user)
    calls = []
    real = bulk_jobs.awards_grant_bulk

    def crash_on_second_chunk(**kwargs):
        calls.append(len(kwargs["grants"]))
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(bulk_jobs, "awards_grant_bulk", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        bulk_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.granted_count) == ("running", 3, 3)
    monkeypatch.setattr(bulk_jobs, "awards_grant_bulk", real)
    # The resume task picks the stalled job up and finishes it from row 4.
    BulkGrantJob.objects.filter(pk=job.pk).update(updated_at="2000-01-01T00:00:00Z")
    assert bulk_jobs_resume() == 1
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.granted_count) == ("done", 7, 7)
    assert Award.objects.count() == 7
    assert MemberMetrics.objects.get(member=members["bog"]).award_points == 7


def test_job_fails_naming_rows_when_the_database_changed_since_the_dry_run(staff_user, members):
    report = bulk_dry_run(raw=GOOD.encode(), filename="x.csv", uploaded_by=staff_user)
    members["heron"].is_active = False
    members["heron"].save()
    job = bulk_job_confirm(token=report.job.token, user=staff_user)
    assert job.status == "failed"
    assert "Row 3 (heron)" in job.error
    assert not Award.objects.exists()  # the chunk is all or nothing


# --- a real worker ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_large_file_is_granted_by_a_real_worker(staff_client, members, start_celery):  # noqa: F811
    rows = 1_200  # over SYNC_MAX_ROWS: the confirmation queues awards.bulk_grant
    names = ["bog", "fen", "heron"]
    content = "".join(f"{names[n % 3]},{n % 7 + 1},Census tally number {n}\n" for n in range(rows))
    dry = staff_client.post(URL, {"file": upload(content, name="census.csv")})
    report = dry.context["report"]
    assert len(report.new_rows) == rows
    start_celery(*_worker_args())
    response = staff_client.post(URL, {"token": str(report.job.token)})
    assert response.status_code == 302
    job = BulkGrantJob.objects.get()
    wait_for(
        lambda: BulkGrantJob.objects.filter(pk=job.pk, status="done").exists(),
        timeout=120,
        what="the worker to finish the bulk job",
    )
    job.refresh_from_db()
    assert (job.granted_count, job.processed_rows, job.skipped_count) == (rows, rows, 0)
    assert Award.objects.filter(source="bulk").count() == rows
    expected = dict.fromkeys(names, 0)
    for n in range(rows):
        expected[names[n % 3]] += n % 7 + 1
    points = dict(MemberMetrics.objects.values_list("member__username", "award_points"))
    assert points == expected
    assert {
        s.member.username: s.total_score for s in UserScore.objects.select_related("member")
    } == expected
    page = staff_client.get(f"/staff/awards/bulk/{job.token}")
    assert "1,200 awards granted" in page.content.decode()
