"""/settings/keys/: a member lists, creates (secret shown once) and revokes their own keys."""

import re

import pytest
from django.utils import timezone

from scoring.apikeys import api_key_authenticate, api_key_create
from scoring.models import ApiKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _plaintext(response) -> str:
    return re.search(rb'id="new-key-value"[^>]*value="(swamp_[0-9a-f]{32})"', response.content)[
        1
    ].decode()


def test_anonymous_is_sent_to_login(client):
    response = client.get("/settings/keys/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/settings/keys/")


def test_a_member_sees_only_their_own_keys(client, member):
    mine, _ = api_key_create(owner=member, scopes=["ingest"], name="cli-devbox-1732870000000")
    api_key_create(owner=UserFactory(), scopes=["ingest"], name="someone-elses")
    ApiKey.objects.filter(pk=mine.pk).update(last_used_at=timezone.now())
    client.force_login(member)
    page = client.get("/settings/keys/")
    assert page.status_code == 200
    assert b"cli-devbox-1732870000000" in page.content
    assert b"someone-elses" not in page.content
    assert b"ingest" in page.content
    assert b"now" in page.content  # last used
    assert page["Cache-Control"].startswith("max-age=0")


def test_creating_a_key_shows_the_secret_once(client, member):
    client.force_login(member)
    response = client.post("/settings/keys/", {"name": "work laptop"})
    assert response.status_code == 200
    raw = _plaintext(response)
    api_key = api_key_authenticate(raw)
    assert api_key.owner == member
    assert api_key.scopes == ["ingest"]
    assert api_key.name == "work laptop"
    assert "no-store" in response["Cache-Control"]
    # Gone from every later page.
    assert raw.encode() not in client.get("/settings/keys/").content


def test_a_member_cannot_ask_for_another_scope_or_owner(client, member):
    other = UserFactory()
    client.force_login(member)
    client.post(
        "/settings/keys/", {"name": "sneaky", "scopes": "award", "username": other.username}
    )
    key = ApiKey.objects.get()
    assert (key.owner, key.scopes) == (member, ["ingest"])


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_an_invalid_name_is_422_beside_the_field_and_creates_nothing(client, member, name):
    client.force_login(member)
    response = client.post("/settings/keys/", {"name": name})
    assert response.status_code == 422
    assert b"field-invalid" in response.content
    assert not ApiKey.objects.exists()


def test_revoking_a_key_refuses_it_at_once(client, member):
    api_key, raw = api_key_create(owner=member, scopes=["ingest"], name="lost laptop")
    client.force_login(member)
    response = client.post(f"/settings/keys/{api_key.pk}/revoke")
    assert response.status_code == 302
    assert response["Location"] == "/settings/keys/"
    assert api_key_authenticate(raw) is None
    assert client.get("/api/whoami", headers={"x-api-key": raw}).status_code == 401
    page = client.get("/settings/keys/")
    assert b"revoked" in page.content


def test_someone_elses_key_cannot_be_revoked(client, member):
    api_key, raw = api_key_create(owner=UserFactory(), scopes=["ingest"])
    client.force_login(member)
    assert client.post(f"/settings/keys/{api_key.pk}/revoke").status_code == 404
    assert api_key_authenticate(raw) is not None


def test_the_page_reads_a_constant_number_of_queries(client, member, django_assert_max_num_queries):
    client.force_login(member)
    for n in range(3):
        api_key_create(owner=member, scopes=["ingest"], name=f"k{n}")
    with django_assert_max_num_queries(4) as few:
        client.get("/settings/keys/")
    for n in range(20):
        api_key_create(owner=member, scopes=["ingest"], name=f"more{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/settings/keys/")
