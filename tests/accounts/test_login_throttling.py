"""Login throttling (django-axes): per account and per IP, on every login page, liftable."""

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "swamp-pass-123"


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _fail(client: Client, path: str, username: str, times: int, **extra) -> list[int]:
    return [
        client.post(path, {"username": username, "password": "wrong-guess"}, **extra).status_code
        for _ in range(times)
    ]


def test_thirty_wrong_passwords_then_the_right_one_is_refused(client, settings):
    staff = UserFactory(username="warden", staff=True)
    statuses = _fail(client, "/accounts/login/", staff.username, 30)
    # The form re-renders (200) until the limit, then every attempt is refused outright.
    limit = settings.AXES_FAILURE_LIMIT
    assert statuses[: limit - 1] == [200] * (limit - 1)
    assert set(statuses[limit - 1 :]) == {429}
    response = client.post("/accounts/login/", {"username": staff.username, "password": PASSWORD})
    assert response.status_code == 429
    assert not _signed_in(client)
    assert b"Too many failed sign-in attempts" in response.content
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))


def test_the_lock_holds_for_the_account_from_another_address(client, settings):
    member = UserFactory()
    for n in range(settings.AXES_FAILURE_LIMIT):
        _fail(client, "/accounts/login/", member.username, 1, REMOTE_ADDR=f"10.0.0.{n + 1}")
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    credentials = {"username": member.username, "password": PASSWORD}
    response = elsewhere.post("/accounts/login/", credentials)
    assert response.status_code == 429
    assert not _signed_in(elsewhere)


def test_the_lock_holds_for_the_address_whatever_the_account(client, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _fail(client, "/accounts/login/", f"guess-{n}", 1)
    member = UserFactory()
    response = client.post("/accounts/login/", {"username": member.username, "password": PASSWORD})
    assert response.status_code == 429
    assert not _signed_in(client)
    # Another address is not affected by this one's failures.
    other = Client(REMOTE_ADDR="192.0.2.8")
    other.post("/accounts/login/", {"username": member.username, "password": PASSWORD})
    assert _signed_in(other)


def test_a_success_before_the_limit_clears_the_count(client, settings):
    member = UserFactory()
    _fail(client, "/accounts/login/", member.username, settings.AXES_FAILURE_LIMIT - 1)
    client.post("/accounts/login/", {"username": member.username, "password": PASSWORD})
    assert _signed_in(client)
    client.logout()
    statuses = _fail(client, "/accounts/login/", member.username, settings.AXES_FAILURE_LIMIT - 1)
    assert 429 not in statuses


def test_admin_login_has_the_same_limit(client, settings):
    staff = UserFactory(username="warden", staff=True)
    statuses = _fail(client, "/admin/login/", staff.username, settings.AXES_FAILURE_LIMIT)
    assert statuses[-1] == 429
    response = client.post("/admin/login/", {"username": staff.username, "password": PASSWORD})
    assert response.status_code == 429
    assert not _signed_in(client)


def test_login_route_for_the_cli_has_the_same_limit(client, settings):
    member = UserFactory()
    statuses = _fail(client, "/login", member.username, settings.AXES_FAILURE_LIMIT)
    assert statuses[-1] == 429


def test_staff_see_the_lockout_in_admin_and_lifting_it_restores_login(client, settings):
    member = UserFactory(username="heron")
    _fail(client, "/accounts/login/", member.username, 30)
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    staff_client = Client(REMOTE_ADDR="192.0.2.9")
    staff_client.force_login(admin)
    listing = staff_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert b"heron" in listing.content
    attempt = AccessAttempt.objects.get(username="heron")
    assert attempt.failures_since_start >= settings.AXES_FAILURE_LIMIT
    deleted = staff_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not AccessAttempt.objects.exists()
    response = client.post("/accounts/login/", {"username": "heron", "password": PASSWORD})
    assert response.status_code == 302
    assert _signed_in(client)


def test_the_reset_command_lifts_a_lockout(client, settings):
    member = UserFactory()
    _fail(client, "/accounts/login/", member.username, settings.AXES_FAILURE_LIMIT)
    call_command("axes_reset_username", member.username)
    client.post("/accounts/login/", {"username": member.username, "password": PASSWORD})
    assert _signed_in(client)
