"""API keys: creation, hashing, authentication, ``last_used_at``, revocation, the command."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from scoring.apikeys import (
    KEY_PATTERN,
    api_key_authenticate,
    api_key_create,
    api_key_from_request,
    api_key_revoke,
)
from scoring.models import ApiKey
from tests.factories import granter_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # Members are created per test; the production hasher would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_created_key_has_the_documented_form(member):
    api_key, raw = api_key_create(owner=member, scopes=["ingest"], name="laptop")

    assert KEY_PATTERN.fullmatch(raw)
    assert len(raw) == len("swamp_") + 32
    assert api_key.prefix == raw[:14]
    assert api_key.owner == member
    assert api_key.name == "laptop"
    assert api_key.scopes == ["ingest"]
    assert api_key.revoked_at is None
    assert api_key.last_used_at is None


def test_only_a_sha256_of_the_key_is_stored(member):
    api_key, raw = api_key_create(owner=granter_make(member), scopes=["ingest", "award"])

    row = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    secret = raw[len("swamp_") :]
    for value in row.values():
        assert raw not in str(value)
        assert secret not in str(value)
        assert secret[8:] not in str(value)  # the part after the public prefix


def test_every_key_is_different(member):
    keys = {api_key_create(owner=member, scopes=["ingest"])[1] for _ in range(20)}

    assert len(keys) == 20
    assert ApiKey.objects.values("prefix").distinct().count() == 20


def test_scopes_are_deduplicated_and_sorted(member):
    api_key, _ = api_key_create(owner=granter_make(member), scopes=["ingest", "award", "ingest"])

    assert api_key.scopes == ["award", "ingest"]
    assert api_key.has_scope("award")


@pytest.mark.parametrize("scopes", [[], ["admin"], ["ingest", "everything"]])
def test_unknown_or_missing_scopes_are_refused(member, scopes):
    with pytest.raises(ValidationError):
        api_key_create(owner=member, scopes=scopes)
    assert not ApiKey.objects.exists()


def test_authenticate_is_one_query(member, django_assert_num_queries):
    api_key, raw = api_key_create(owner=granter_make(member), scopes=["ingest", "award"], name="ci")
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())

    with django_assert_num_queries(1):
        found = api_key_authenticate(raw)
        assert found.owner_id == member.pk
        assert found.scopes == ["award", "ingest"]
        assert found.name == "ci"
        assert found.created_at == api_key.created_at

    assert found == api_key


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "swamp_",
        "swamp_" + "g" * 32,
        "swamp_" + "A" * 32,
        "token_" + "0" * 32,
        "swamp_" + "0" * 33,
        " swamp_" + "0" * 32,
    ],
)
def test_malformed_keys_fail_without_a_query(raw, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert api_key_authenticate(raw) is None


def test_wrong_secret_behind_a_real_prefix_fails(member):
    _, raw = api_key_create(owner=member, scopes=["ingest"])
    forged = raw[:14] + "".join("0" if c != "0" else "1" for c in raw[14:])

    assert api_key_authenticate(forged) is None


def test_revoked_key_fails_and_revocation_is_idempotent(member):
    api_key, raw = api_key_create(owner=member, scopes=["ingest"])

    api_key_revoke(api_key=api_key)
    first = api_key.revoked_at
    api_key_revoke(api_key=api_key)

    assert first is not None
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at == first
    assert api_key_authenticate(raw) is None


def test_key_of_a_deactivated_member_fails(member):
    _, raw = api_key_create(owner=member, scopes=["ingest"])
    member.is_active = False
    member.save()

    assert api_key_authenticate(raw) is None


def test_last_used_at_is_written_at_most_once_a_minute(member, django_assert_num_queries):
    api_key, raw = api_key_create(owner=member, scopes=["ingest"])

    with django_assert_num_queries(2):  # SELECT, then the first UPDATE
        api_key_authenticate(raw)
    first_use = ApiKey.objects.get(pk=api_key.pk).last_used_at
    assert first_use is not None

    with django_assert_num_queries(1):  # fresh: no write
        api_key_authenticate(raw)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == first_use

    stale = timezone.now() - timedelta(minutes=5)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=stale)
    with django_assert_num_queries(2):
        api_key_authenticate(raw)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at > stale


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-api-key": " swamp_abc "}, "swamp_abc"),
        ({"Authorization": "Bearer swamp_abc"}, "swamp_abc"),
        ({"Authorization": "bearer   swamp_abc"}, "swamp_abc"),
        ({"Authorization": "Basic swamp_abc"}, ""),
        ({"x-api-key": "swamp_x", "Authorization": "Bearer swamp_y"}, "swamp_x"),
        ({}, ""),
    ],
)
def test_key_is_read_from_either_header(rf, headers, expected):
    assert api_key_from_request(rf.post("/ingest", headers=headers)) == expected


# --- manage.py create_api_key ------------------------------------------------------------------


def test_command_prints_the_key_alone_on_the_last_line(member):
    out = StringIO()

    call_command("create_api_key", member.username, "--scope", "ingest", "--name", "ci", stdout=out)

    raw = out.getvalue().rstrip("\n").splitlines()[-1]
    assert KEY_PATTERN.fullmatch(raw)
    api_key = api_key_authenticate(raw)
    assert api_key.owner == member
    assert api_key.scopes == ["ingest"]
    assert api_key.name == "ci"


def test_command_grants_several_scopes(member):
    granter_make(member)
    out = StringIO()

    call_command(
        "create_api_key", member.username, "--scope", "ingest", "--scope", "award", stdout=out
    )

    raw = out.getvalue().splitlines()[-1]
    assert api_key_authenticate(raw).scopes == ["award", "ingest"]


def test_command_refuses_an_unknown_member(db):
    with pytest.raises(CommandError, match="nobody"):
        call_command("create_api_key", "nobody", "--scope", "ingest", stdout=StringIO())
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("args", [["--scope", "root"], []])
def test_command_refuses_a_bad_or_missing_scope(member, args):
    with pytest.raises(CommandError):
        call_command("create_api_key", member.username, *args, stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_admin_shows_no_secret(admin_client, member):
    api_key, raw = api_key_create(owner=member, scopes=["ingest"])

    page = admin_client.get(f"/admin/scoring/apikey/{api_key.pk}/change/").content.decode()

    assert api_key.prefix in page
    assert raw not in page
    assert admin_client.get("/admin/scoring/apikey/add/").status_code == 403


def test_admin_revoke_action(admin_client, member):
    api_key, raw = api_key_create(owner=member, scopes=["ingest"])

    admin_client.post(
        "/admin/scoring/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )

    assert api_key_authenticate(raw) is None
