"""The swamp CLI's sign-in JSON (SPEC §10 "CLI sign-in"), as its own client calls it.

``POST /api/auth/sign-in/username`` and ``…/email`` trade a password for a sign-in token;
``POST /api/auth/api-key/create`` trades that token, once, for an ``ingest`` key;
``GET /api/whoami`` tells the CLI whose key it holds. These endpoints are called by a
program with credentials in the body or headers, never with a browser session, so they are
exempt from CSRF (there is no cookie-borne authority to forge).
"""

import json
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.models import CliSignInToken
from accounts.services import (
    SignInTokenInvalid,
    cli_token_issue,
    cli_token_redeem,
    member_authenticate,
)
from accounts.throttle import lockout_response, sign_in_locked_out
from scoring.apikeys import (
    api_key_authenticate,
    api_key_from_request,
    api_key_scopes_effective,
)
from swampclub.http import json_error

INVALID_CREDENTIALS = "Invalid username/email or password."
MAX_FIELD = 254


class _BadBody(Exception):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message


def _bad_request(field: str, message: str) -> JsonResponse:
    return json_error(400, "invalid_request", errors=[{"field": field, "message": message}])


def _json_object(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise _BadBody("body", "The body must be a JSON object.") from error
    if not isinstance(body, dict):
        raise _BadBody("body", "The body must be a JSON object.")
    return body


def _string_field(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value or len(value) > MAX_FIELD or "\x00" in value:
        raise _BadBody(field, f"Give {field} as a non-empty string of at most {MAX_FIELD}.")
    return value


def _user_json(user: User) -> dict[str, str]:
    return {
        "id": str(user.pk),
        "email": user.email,
        "name": user.get_full_name() or user.get_username(),
        "username": user.get_username(),
    }


def _sign_in(request: HttpRequest, login_field: str) -> HttpResponse:
    try:
        body = _json_object(request)
        login = _string_field(body, login_field)
        password = _string_field(body, "password")
    except _BadBody as bad:
        return _bad_request(bad.field, bad.message)
    user = member_authenticate(request=request, password=password, **{login_field: login})
    if user is None:
        if sign_in_locked_out(request):
            return lockout_response(request)
        return json_error(401, "invalid_credentials", message=INVALID_CREDENTIALS)
    token = cli_token_issue(member=user, via=CliSignInToken.Via.PASSWORD)
    response = JsonResponse({"token": token, "user": _user_json(user)})
    add_never_cache_headers(response)
    return response


@csrf_exempt
@require_POST
def sign_in_username(request: HttpRequest) -> HttpResponse:
    """``{"username", "password"}`` → 200 ``{"token", "user": {"id", "email", "name",
    "username"}}``; wrong credentials 401; locked out 429 with ``Retry-After``; a body
    without both strings 400 naming the field.

    The token is good for one ``/api/auth/api-key/create`` within 10 minutes, nothing else.
    """
    return _sign_in(request, "username")


@csrf_exempt
@require_POST
def sign_in_email(request: HttpRequest) -> HttpResponse:
    """``{"email", "password"}``: as ``sign_in_username``, the account found by e-mail."""
    return _sign_in(request, "email")


@csrf_exempt
@require_POST
def api_key_create(request: HttpRequest) -> JsonResponse:
    """``Authorization: Bearer <sign-in token>`` and ``{"name"}`` → 201 ``{"id", "key"}``.

    The key has the ``ingest`` scope only and belongs to the token's member; its name is
    kept (the CLI sends ``cli-<host>-<ms>``, which the member sees on ``/settings/keys/``).
    A missing, unknown, expired or spent token → 401; a missing name → 400 (the token stays
    usable). The key text appears in this answer only.
    """
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return json_error(401, "missing_token", message="Send Authorization: Bearer <token>.")
    try:
        body = _json_object(request)
    except _BadBody as bad:
        return _bad_request(bad.field, bad.message)
    try:
        api_key, plaintext = cli_token_redeem(token=token.strip(), name=body.get("name"))
    except SignInTokenInvalid:
        return json_error(
            401,
            "invalid_token",
            message="The sign-in token is unknown, expired or already used: sign in again.",
        )
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        return _bad_request(field, messages[0])
    response = JsonResponse(
        {
            "id": str(api_key.pk),
            "key": plaintext,
            "name": api_key.name,
            "scopes": api_key.scopes,
        },
        status=201,
    )
    add_never_cache_headers(response)
    return response


@require_GET
def whoami(request: HttpRequest) -> JsonResponse:
    """``x-api-key: <key>`` → 200 ``{"authenticated": true, "id", "username", "email",
    "name", "scopes"}``; a missing, unknown or revoked key, or one whose owner is inactive,
    → 401 ``{"authenticated": false, "error": "invalid_api_key"}``.
    """
    api_key = api_key_authenticate(api_key_from_request(request))
    # The key service already refuses keys of inactive owners; the owner is checked here as
    # well because this answer names them.
    owner = api_key.owner if api_key is not None else None
    if api_key is None or owner is None or not owner.is_active:
        return json_error(401, "invalid_api_key", authenticated=False)
    # What the key may do now (a suspended scope is not listed), in the key's own order.
    effective = api_key_scopes_effective(api_key)
    scopes = [scope for scope in api_key.scopes if scope in effective]
    return JsonResponse({"authenticated": True, **_user_json(owner), "scopes": scopes})
