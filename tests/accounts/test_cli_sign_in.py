"""The swamp CLI's sign-in contract (SPEC §10), replayed from its recorded requests."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts.models import CliSignInToken
from accounts.services import cli_token_issue
from scoring.consumer import events_consume
from scoring.models import ApiKey, UserScore
from scoring.scores import scores_process_batch
from tests.accounts.conftest import FIXTURES
from tests.cli_wire import FIXTURES_DIR, cli_event, fixture_load
from tests.factories import UserFactory
from tests.scoring.test_cli_wire import RECORDED_DAY, post_recorded

pytestmark = pytest.mark.django_db

PASSWORD = "swamp-pass-123"  # UserFactory's


def _send(client: Client, request: dict, body: dict | None = None, **header_overrides: str):
    """Replay one recorded request, with some body fields and header values replaced."""
    headers = {**request["headers"], **header_overrides}
    content_type = headers.pop("content-type", headers.pop("Content-Type", None))
    if request["method"] == "GET":
        return client.get(request["path"], headers=headers)
    return client.post(
        request["path"],
        json.dumps({**request["body"], **(body or {})}),
        content_type=content_type,
        headers=headers,
    )


def _sign_in(client: Client, username: str, password: str):
    return client.post(
        "/api/auth/sign-in/username",
        {"username": username, "password": password},
        content_type="application/json",
    )


def test_replaying_the_recorded_login_gives_a_key_whose_telemetry_is_scored(settings):
    member = UserFactory(
        username="heron", email="heron@swamp.example", first_name="Grey", last_name="Heron"
    )
    credentials = {"username": "heron", "email": "HERON@swamp.example", "password": PASSWORD}
    user = {"id": str(member.pk), "email": member.email, "name": "Grey Heron", "username": "heron"}
    client = Client()
    requests = sorted(FIXTURES.glob("*.json"))
    assert [p.name for p in requests] == [
        "1-sign-in-username.json",
        "1b-sign-in-email.json",
        "2-api-key-create.json",
        "3-whoami.json",
    ]
    token = key = None
    for path in requests:
        request = json.loads(path.read_text())
        # The recorded placeholders are the member's credentials, the token and the key
        # received earlier in the flow.
        body = {
            field: credentials[field] for field in request["body"] or {} if field in credentials
        }
        headers = {}
        if "authorization" in request["headers"]:
            headers["authorization"] = f"Bearer {token}"
        if "x-api-key" in request["headers"]:
            headers["x-api-key"] = key
        response = _send(client, request, body, **headers)
        answer = response.json()
        if request["path"].startswith("/api/auth/sign-in/"):
            assert response.status_code == 200, answer
            assert answer["user"] == user
            token = answer["token"]
        elif request["path"] == "/api/auth/api-key/create":
            assert response.status_code == 201, answer
            assert set(answer) >= {"id", "key"}
            key = answer["key"]
            row = ApiKey.objects.get(pk=answer["id"])
            assert row.owner == member
            assert row.scopes == ["ingest"]
            assert row.name == request["body"]["name"]
        else:
            assert response.status_code == 200, answer
            assert answer == {"authenticated": True, **user, "scopes": ["ingest"]}
    # The CLI now sends its telemetry with the key it received: the recorded request, unchanged.
    settings.TELEMETRY_MAX_AGE_DAYS = 100_000  # the recording keeps its date forever
    telemetry = fixture_load(FIXTURES_DIR / "single-bare.json")
    ingest = post_recorded(client, telemetry, key)
    assert ingest.status_code == 202, ingest.content
    assert ingest.json() == {"accepted": 1, "duplicates": 0}
    assert events_consume() == 1
    scores_process_batch(as_of=RECORDED_DAY)
    score = UserScore.objects.get(member=member)
    # One "version" invocation on the recorded day: (10 + 50) x 1.00 x (1 + 0.5 x 1/30) = 61.
    assert score.activity_score == 61
    assert score.total_score == 61
    assert score.total_score == score.activity_score


def test_sign_in_by_email_ignores_case_and_answers_like_a_wrong_password_when_unknown(
    client, alice, alice_password
):
    good = client.post(
        "/api/auth/sign-in/email",
        {"email": alice.email.upper(), "password": alice_password},
        content_type="application/json",
    )
    assert good.status_code == 200
    assert good.json()["user"]["username"] == "alice"
    unknown = client.post(
        "/api/auth/sign-in/email",
        {"email": "nobody@example.org", "password": alice_password},
        content_type="application/json",
    )
    wrong = client.post(
        "/api/auth/sign-in/email",
        {"email": alice.email, "password": "not it"},
        content_type="application/json",
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_an_e_mail_shared_by_two_accounts_signs_in_neither(client, alice, alice_password):
    UserFactory(username="alice2", email=alice.email.upper(), password=alice_password)
    response = client.post(
        "/api/auth/sign-in/email",
        {"email": alice.email, "password": alice_password},
        content_type="application/json",
    )
    assert response.status_code == 401


def test_wrong_password_is_401_json_and_issues_nothing(client, alice):
    response = _sign_in(client, "alice", "not the password")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"
    assert not CliSignInToken.objects.exists()


def test_an_inactive_member_cannot_sign_in(client, alice, alice_password):
    alice.is_active = False
    alice.save()
    assert _sign_in(client, "alice", alice_password).status_code == 401


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"username": "alice"}', b'{"username": 7, "password": "x"}'],
)
def test_a_malformed_sign_in_is_a_400_naming_the_field(client, alice, body):
    response = client.post("/api/auth/sign-in/username", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["errors"][0]["field"] in {"body", "username", "password"}


def test_repeated_failures_are_throttled_with_retry_after(client, alice, alice_password):
    statuses = [_sign_in(client, "alice", "guess").status_code for _ in range(12)]
    limit = settings.AXES_FAILURE_LIMIT
    assert statuses[: limit - 1] == [401] * (limit - 1)
    assert set(statuses[limit - 1 :]) == {429}
    # Locked: even the right password is refused, and the answer says when to retry.
    response = _sign_in(client, "alice", alice_password)
    assert response.status_code == 429
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    assert response.json()["error"] == "too_many_attempts"
    assert not CliSignInToken.objects.exists()
    # The site login shares the same lock.
    site = client.post("/accounts/login/", {"username": "alice", "password": alice_password})
    assert site.status_code == 429


def _token(client, alice_password) -> str:
    return _sign_in(client, "alice", alice_password).json()["token"]


def _create_key(client, token: str, name: str = "cli-devbox-1"):
    return client.post(
        "/api/auth/api-key/create",
        {"name": name},
        content_type="application/json",
        headers={"authorization": f"Bearer {token}"},
    )


def test_the_token_is_stored_only_hashed(client, alice, alice_password):
    token = _token(client, alice_password)
    row = CliSignInToken.objects.get()
    assert token not in row.token_hash
    assert row.member == alice
    assert row.expires_at - row.created_at == timedelta(minutes=10)


def test_the_token_is_single_use(client, alice, alice_password):
    token = _token(client, alice_password)
    assert _create_key(client, token).status_code == 201
    again = _create_key(client, token)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_token"
    assert ApiKey.objects.filter(owner=alice).count() == 1


def test_the_token_expires_after_ten_minutes(client, alice, alice_password):
    token = _token(client, alice_password)
    CliSignInToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _create_key(client, token).status_code == 401
    assert not ApiKey.objects.exists()


def test_the_token_dies_with_a_deactivated_member(client, alice, alice_password):
    token = _token(client, alice_password)
    alice.is_active = False
    alice.save()
    assert _create_key(client, token).status_code == 401
    assert not ApiKey.objects.exists()


def test_a_missing_name_is_400_and_leaves_the_token_usable(client, alice, alice_password):
    token = _token(client, alice_password)
    response = client.post(
        "/api/auth/api-key/create",
        {},
        content_type="application/json",
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "name"
    assert _create_key(client, token).status_code == 201


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer sess_nope", "Basic abc"])
def test_key_creation_without_a_valid_token_is_401(client, alice, authorization):
    headers = {"authorization": authorization} if authorization else {}
    response = client.post(
        "/api/auth/api-key/create", {"name": "x"}, content_type="application/json", headers=headers
    )
    assert response.status_code == 401
    assert not ApiKey.objects.exists()


def test_the_token_is_no_api_key(client, alice, alice_password):
    token = _token(client, alice_password)
    event = json.dumps(cli_event("with-token"))
    for headers in ({"x-api-key": token}, {"authorization": f"Bearer {token}"}):
        response = client.post("/ingest", event, content_type="application/json", headers=headers)
        assert response.status_code == 401
        assert client.get("/api/whoami", headers=headers).status_code == 401
    # ...and it was not spent by those attempts.
    assert _create_key(client, token).status_code == 201


def test_the_token_is_no_site_session(client, alice, alice_password):
    token = _token(client, alice_password)
    # Signing in for the CLI opens no session...
    assert "_auth_user_id" not in client.session
    # ...and the token opens none, as a cookie or as a bearer credential.
    client.cookies[settings.SESSION_COOKIE_NAME] = token
    assert client.get("/settings/keys/")["Location"].startswith("/accounts/login/")
    bearer = Client()
    response = bearer.get("/settings/keys/", headers={"authorization": f"Bearer {token}"})
    assert response["Location"].startswith("/accounts/login/")


def test_a_token_from_the_browser_flow_creates_a_key_too(client, alice):
    token = cli_token_issue(member=alice, via=CliSignInToken.Via.BROWSER)
    response = _create_key(client, token, name="cli-laptop-1732870000000")
    assert response.status_code == 201
    assert ApiKey.objects.get(pk=response.json()["id"]).name == "cli-laptop-1732870000000"


def test_whoami_refuses_unknown_revoked_and_inactive_owners(client, alice, alice_password):
    token = _token(client, alice_password)
    key = _create_key(client, token).json()["key"]
    assert client.get("/api/whoami", headers={"x-api-key": key}).status_code == 200
    assert client.get("/api/whoami").status_code == 401
    unknown = "swamp_" + "0" * 32
    assert client.get("/api/whoami", headers={"x-api-key": unknown}).status_code == 401
    alice.is_active = False
    alice.save()
    response = client.get("/api/whoami", headers={"x-api-key": key})
    assert response.status_code == 401
    assert response.json()["authenticated"] is False
    alice.is_active = True
    alice.save()
    ApiKey.objects.update(revoked_at=timezone.now())
    assert client.get("/api/whoami", headers={"x-api-key": key}).status_code == 401


def test_whoami_lists_only_the_scopes_the_owner_may_use_now(client):
    from scoring.apikeys import api_key_create
    from tests.factories import granter_make

    owner = granter_make(UserFactory(username="reedwarden"))
    _, key = api_key_create(owner=owner, scopes=["ingest", "award"], name="granter")
    headers = {"x-api-key": key}
    assert sorted(client.get("/api/whoami", headers=headers).json()["scopes"]) == [
        "award",
        "ingest",
    ]
    owner.is_staff = False  # demoted: the award scope is suspended, telemetry still counts
    owner.save(update_fields=["is_staff"])
    response = client.get("/api/whoami", headers=headers)
    assert response.status_code == 200
    assert response.json()["scopes"] == ["ingest"]
