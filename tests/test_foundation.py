"""The project's base: auth pages, settings modes, the leaderboard placeholder."""

import subprocess
import sys

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_login_page_renders_with_csp_nonce(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert b'name="username"' in response.content


def test_login_then_logout(client, member):
    response = client.post(
        "/accounts/login/", {"username": member.username, "password": "swamp-pass-123"}
    )
    assert response.status_code == 302
    assert client.get("/leaderboard/").context["user"] == member
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert not client.get("/leaderboard/").context["user"].is_authenticated


def test_leaderboard_lists_members_by_total(client):
    from django.utils import timezone

    from scoring.models import UserScore
    from tests.factories import UserFactory

    now = timezone.now()
    for name, total in [("low", 5), ("high", 500), ("mid", 50)]:
        user = UserFactory(username=name)
        UserScore.objects.create(member=user, username=name, total_score=total, computed_at=now)
    body = client.get("/leaderboard/").content.decode()
    assert body.index(">high<") < body.index(">mid<") < body.index(">low<")


def test_celery_is_json_only_and_acks_late():
    from swampclub.celery import app

    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["options"]["expires"] > 0


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "swampclub.settings_production",
        "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-1234567890-abcdefgh",
        "ALLOWED_HOSTS": "swamp.club",
        "SWAMPCLUB_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
