"""Authority is checked where it is used: API keys at creation and at every request.

Each test here reproduces a way around the rules that once worked (a key manager minting an
award key in a granter's name, a demoted owner's key still granting, the command skipping
the form's rule) and pins that it no longer does.
"""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from awards.models import Award
from scoring.apikeys import (
    api_key_authorize,
    api_key_create,
    api_key_scopes_effective,
    owners_authority,
)
from scoring.consumer import events_consume
from scoring.models import ApiKey, TelemetryEvent
from tests.cli_wire import bot_award_event, cli_event, cli_events
from tests.factories import UserFactory, granter_make

pytestmark = pytest.mark.django_db

KEYS_URL = "/staff/api-keys/"


@pytest.fixture(autouse=True)
def _fast_hashing_and_no_rate_limit(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.INGEST_RATE_LIMIT = 10**9


@pytest.fixture
def warden(db):
    """A staff member who may grant awards."""
    return UserFactory(username="warden", granter=True)


@pytest.fixture
def key_manager(db):
    """Staff holding only ``scoring.add_apikey``."""
    return UserFactory(username="keymaster", staff=True, permissions=["scoring.add_apikey"])


def _post(raw: str, body) -> tuple[int, dict]:
    response = Client(HTTP_X_API_KEY=raw).post(
        "/ingest", json.dumps(body), content_type="application/json"
    )
    return response.status_code, response.json()


def _demote(user, *, staff: bool = False, permission: bool = False) -> None:
    user.is_staff = staff
    user.save(update_fields=["is_staff"])
    if not permission:
        user.user_permissions.remove(Permission.objects.get(codename="add_award"))


# --- 1. key management grants nothing ----------------------------------------------------------


def test_key_manager_cannot_create_an_award_key_in_a_granters_name(client, key_manager, warden):
    # The reported escalation: a key owned by warden, made by someone else, granting to
    # its maker with warden's authority.
    client.force_login(key_manager)
    data = {"username": "warden", "name": "mine now", "scopes": ["ingest", "award"]}
    response = client.post(KEYS_URL, data, headers={"HX-Request": "true"})

    assert response.status_code == 422
    assert "Only its owner (or a superuser)" in response.content.decode()
    assert not ApiKey.objects.exists()
    assert not Award.objects.exists()


def test_key_manager_creates_ingest_keys_for_members_and_revokes_any_key(
    client, key_manager, warden, member
):
    client.force_login(key_manager)
    response = client.post(KEYS_URL, {"username": member.username, "scopes": ["ingest"]})
    assert response.status_code == 200
    created = ApiKey.objects.get(owner=member)
    assert created.scopes == ["ingest"]

    warden_key, raw = api_key_create(owner=warden, scopes=["award"], created_by=warden)
    assert client.post(f"/staff/api-keys/{warden_key.pk}/revoke").status_code == 302
    event = bot_award_event(username=member.username, points=1, reason="Hi", award_id="r")
    assert _post(raw, event)[0] == 401


def test_key_manager_cannot_give_the_award_scope_even_to_themselves(key_manager):
    # Owner or not, the owner must hold awards.add_award.
    with pytest.raises(ValidationError, match=r"staff with the awards\.add_award"):
        api_key_create(owner=key_manager, scopes=["award"], created_by=key_manager)


def test_only_the_owner_or_a_superuser_creates_an_award_key(warden):
    other_granter = UserFactory(granter=True, permissions=["scoring.add_apikey"])
    with pytest.raises(ValidationError, match="Only its owner"):
        api_key_create(owner=warden, scopes=["award"], created_by=other_granter)

    own, _ = api_key_create(owner=warden, scopes=["award"], created_by=warden)
    superuser = UserFactory(is_staff=True, is_superuser=True)
    by_superuser, _ = api_key_create(owner=warden, scopes=["award"], created_by=superuser)
    assert own.scopes == by_superuser.scopes == ["award"]


def test_creating_a_key_for_someone_else_needs_the_key_permission(warden, member):
    with pytest.raises(PermissionDenied):
        api_key_create(owner=member, scopes=["ingest"], created_by=warden)
    # A member makes their own ingest key.
    api_key, _ = api_key_create(owner=member, scopes=["ingest"], created_by=member)
    assert api_key.owner == member


def test_no_key_for_an_inactive_owner(member):
    member.is_active = False
    member.save(update_fields=["is_active"])
    with pytest.raises(ValidationError, match="inactive"):
        api_key_create(owner=member, scopes=["ingest"])


def test_award_key_follows_the_owners_group_permission(member):
    group = Group.objects.create(name="granters")
    group.permissions.add(Permission.objects.get(codename="add_award"))
    member.is_staff = True
    member.save(update_fields=["is_staff"])
    member.groups.add(group)
    _, raw = api_key_create(owner=member, scopes=["award"])
    assert "award" in api_key_scopes_effective(api_key_authorize(raw))

    member.groups.remove(group)
    assert "award" not in api_key_scopes_effective(api_key_authorize(raw))


# --- 2. rights are checked at every use --------------------------------------------------------


@pytest.mark.parametrize(
    "demotion",
    [
        {"staff": False, "permission": True},
        {"staff": True, "permission": False},
        {"staff": False, "permission": False},
    ],
    ids=["no-longer-staff", "permission-removed", "both"],
)
def test_a_demoted_owners_award_key_is_403_and_stores_nothing(warden, member, demotion):
    _, raw = api_key_create(owner=warden, scopes=["ingest", "award"])
    first = bot_award_event(username=member.username, points=5, reason="Before", award_id="a1")
    assert _post(raw, first)[0] == 202

    _demote(warden, **demotion)
    stored = TelemetryEvent.objects.count()
    later = bot_award_event(username=member.username, points=5, reason="After", award_id="a2")
    status, body = _post(raw, later)

    assert status == 403
    assert body["error"] == "forbidden"
    assert "suspended" in body["message"]
    assert TelemetryEvent.objects.count() == stored
    # The same key still carries telemetry for its (active) owner.
    assert _post(raw, cli_event("still-ingests"))[0] == 202


def test_rights_given_back_restore_the_award_scope(warden, member):
    _, raw = api_key_create(owner=warden, scopes=["award"])
    _demote(warden)
    event = bot_award_event(username=member.username, points=1, reason="No", award_id="x")
    assert _post(raw, event)[0] == 403
    granter_make(warden)
    event = bot_award_event(username=member.username, points=1, reason="Yes", award_id="y")
    assert _post(raw, event)[0] == 202


def test_an_inactive_owners_key_is_403_for_every_event(warden, member):
    _, raw = api_key_create(owner=warden, scopes=["ingest", "award"])
    warden.is_active = False
    warden.save(update_fields=["is_active"])

    for body in (
        cli_event("inactive-1"),
        bot_award_event(username=member.username, points=1, reason="Hi", award_id="i"),
    ):
        status, answer = _post(raw, body)
        assert status == 403
        assert "inactive" in answer["message"]
    assert not TelemetryEvent.objects.exists()


def test_an_award_accepted_before_the_demotion_grants_nothing(warden, member):
    # Accepted while the owner could grant, consumed after the rights were taken away: the
    # consumer asks again and rejects the event with the reason.
    _, raw = api_key_create(owner=warden, scopes=["award"])
    body = bot_award_event(username=member.username, points=100_000, reason="Late", award_id="late")
    assert _post(raw, body)[0] == 202
    _demote(warden)

    events_consume()

    event = TelemetryEvent.objects.get(event="award")
    assert event.status == TelemetryEvent.Status.REJECTED
    assert "may not grant awards now" in event.error
    assert not Award.objects.exists()


def test_staff_key_list_shows_suspended_keys_with_the_reason(client, key_manager, warden, member):
    api_key_create(owner=warden, scopes=["ingest", "award"])
    api_key_create(owner=member, scopes=["ingest"])
    _demote(warden)
    inactive = UserFactory(username="gone")
    api_key_create(owner=inactive, scopes=["ingest"])
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])

    client.force_login(key_manager)
    html = client.get(KEYS_URL).content.decode()

    assert html.count(">suspended<") == 2
    assert "award scope: the owner is no longer staff" in html
    assert "the owner&#x27;s account is inactive" in html


def test_authority_costs_no_query_per_event(warden):
    # One query finds the key with its owner's rights; a batch of 1 or 500 events costs
    # the same number of queries.
    _, raw = api_key_create(owner=warden, scopes=["ingest", "award"])
    _post(raw, cli_event("warm-up"))
    counts = []
    for size in (1, 500):
        with CaptureQueriesContext(connection) as queries:
            status, _ = _post(raw, {"events": cli_events(f"batch{size}", size)})
        assert status == 202
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_owners_authority_is_one_query(warden, member, django_assert_num_queries):
    with django_assert_num_queries(1):
        authority = owners_authority(owner_ids=[warden.pk, member.pk])
    assert authority[warden.pk].scope_problem("award") is None
    assert authority[member.pk].scope_problem("award") == "the owner is no longer staff"
    assert authority[member.pk].scope_problem("ingest") is None


# --- 3. the command goes through the same rule -------------------------------------------------


def test_command_refuses_an_award_key_for_a_plain_member(member):
    with pytest.raises(CommandError, match=r"awards\.add_award"):
        call_command("create_api_key", member.username, "--scope", "award", stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_command_refuses_an_award_key_for_a_non_staff_permission_holder(member):
    member.user_permissions.add(Permission.objects.get(codename="add_award"))
    with pytest.raises(CommandError, match="staff"):
        call_command(
            "create_api_key",
            member.username,
            "--scope",
            "ingest",
            "--scope",
            "award",
            stdout=StringIO(),
        )
    assert not ApiKey.objects.exists()


def test_command_creates_an_award_key_for_a_granter(warden):
    out = StringIO()
    call_command("create_api_key", "warden", "--scope", "award", "--name", "bot", stdout=out)
    raw = out.getvalue().splitlines()[-1]
    assert api_key_scopes_effective(api_key_authorize(raw)) == {"award"}


def test_command_refuses_an_inactive_member(member):
    member.is_active = False
    member.save(update_fields=["is_active"])
    with pytest.raises(CommandError, match="inactive"):
        call_command("create_api_key", member.username, "--scope", "ingest", stdout=StringIO())
