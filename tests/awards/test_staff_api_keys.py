"""API keys (/staff/api-keys/): create with the secret shown once, list, revoke."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from scoring.apikeys import api_key_authenticate, api_key_create
from scoring.models import ApiKey
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/staff/api-keys/"


@pytest.fixture
def keeper(db):
    """A staff member who manages API keys (and may grant awards)."""
    user = UserFactory(username="keeper", staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_apikey", "add_award", "view_award"])
    )
    return user


@pytest.fixture
def keeper_client(client, keeper):
    client.force_login(keeper)
    return client


def secret_in(html: str) -> str:
    match = re.search(r'value="(swamp_[0-9a-f]{32})"', html)
    assert match, "the new key is shown"
    return match.group(1)


def test_page_lists_keys_without_secrets(keeper_client, member):
    api_key, plaintext = api_key_create(owner=member, scopes=["ingest"], name="laptop")
    response = keeper_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert api_key.prefix in html
    assert "laptop" in html
    assert plaintext not in html


def test_htmx_create_shows_secret_once_and_fires_event(keeper_client, member, htmx_headers):
    data = {"username": member.username, "name": "ci", "scopes": ["ingest"]}
    response = keeper_client.post(URL, data, headers=htmx_headers)
    assert response.status_code == 200
    html = response.content.decode()
    plaintext = secret_in(html)
    assert "shown only once" in html
    assert "api-key-created" in response["HX-Trigger"]
    assert "no-store" in response["Cache-Control"]
    api_key = api_key_authenticate(plaintext)
    assert api_key.owner == member
    assert api_key.scopes == ["ingest"]
    assert plaintext not in keeper_client.get(URL).content.decode()


def test_plain_create_renders_the_page_with_the_secret(keeper_client, member):
    data = {"username": member.username, "name": "ci", "scopes": ["ingest"]}
    response = keeper_client.post(URL, data)
    assert response.status_code == 200
    plaintext = secret_in(response.content.decode())
    assert ApiKey.objects.get().prefix == plaintext[:14]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "ghost", "scopes": ["ingest"]}, "No member is called"),
        ({"username": "MEMBER", "scopes": []}, "This field is required"),
        ({"username": "MEMBER", "scopes": ["admin"]}, "Select a valid choice"),
        ({"username": "MEMBER", "scopes": ["award"]}, "Only its owner (or a superuser)"),
    ],
)
def test_invalid_create_is_422_and_stores_nothing(
    keeper_client, member, htmx_headers, data, message
):
    data = {**data, "username": data["username"].replace("MEMBER", member.username)}
    response = keeper_client.post(URL, data, headers=htmx_headers)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not ApiKey.objects.exists()


def test_award_scope_for_oneself_as_a_granter(keeper_client, keeper, htmx_headers):
    data = {"username": "keeper", "scopes": ["ingest", "award"]}
    response = keeper_client.post(URL, data, headers=htmx_headers)
    assert response.status_code == 200
    assert sorted(ApiKey.objects.get().scopes) == ["award", "ingest"]


def test_award_scope_for_another_granter_is_refused(keeper_client, htmx_headers):
    # The key would grant with the other staff member's authority.
    granter = UserFactory(username="granter", staff=True)
    granter.user_permissions.add(Permission.objects.get(codename="add_award"))
    data = {"username": "granter", "scopes": ["ingest", "award"]}
    response = keeper_client.post(URL, data, headers=htmx_headers)
    assert response.status_code == 422
    assert "Only its owner (or a superuser)" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_with_htmx_returns_the_row(keeper_client, member, htmx_headers):
    api_key, plaintext = api_key_create(owner=member, scopes=["ingest"])
    response = keeper_client.post(f"/staff/api-keys/{api_key.pk}/revoke", headers=htmx_headers)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith(f'<tr id="key-{api_key.pk}"')
    assert "revoked" in html
    assert api_key_authenticate(plaintext) is None
    again = keeper_client.post(f"/staff/api-keys/{api_key.pk}/revoke", headers=htmx_headers)
    assert again.status_code == 200


def test_plain_revoke_redirects(keeper_client, member):
    api_key, _ = api_key_create(owner=member, scopes=["ingest"])
    response = keeper_client.post(f"/staff/api-keys/{api_key.pk}/revoke")
    assert response.status_code == 302
    assert response["Location"] == URL
    assert ApiKey.objects.get().revoked_at is not None
    assert keeper_client.post("/staff/api-keys/999999/revoke").status_code == 404


def test_permissions(client, member, staff_user):
    assert client.get(URL).status_code == 302
    client.force_login(staff_user)  # staff with award rights but not key rights
    assert client.get(URL).status_code == 403
    data = {"username": member.username, "scopes": ["ingest"]}
    assert client.post(URL, data).status_code == 403
    api_key, _ = api_key_create(owner=member, scopes=["ingest"])
    assert client.post(f"/staff/api-keys/{api_key.pk}/revoke").status_code == 403
    assert ApiKey.objects.get().revoked_at is None
    assert ApiKey.objects.count() == 1


def test_csrf_is_enforced(keeper, member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(keeper)
    data = {"username": member.username, "scopes": ["ingest"]}
    assert client.post(URL, data).status_code == 403
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("count", [3, 60])
def test_query_count_does_not_grow_with_keys(keeper_client, count, django_assert_max_num_queries):
    for _ in range(count):
        api_key_create(owner=UserFactory(), scopes=["ingest"])
    with django_assert_max_num_queries(5):
        response = keeper_client.get(URL)
    assert response.content.decode().count('<tr id="key-') == count
