"""Writes of the accounts app: CLI sign-in tokens and members' own API keys.

Key rows belong to ``scoring``; they are created and revoked only through its key service
(``scoring.apikeys``), which this module calls with the rules for members: a member makes
``ingest`` keys for themself, never keys of another scope or owner.
"""

import hashlib
import re
import secrets

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import CliSignInToken
from scoring.apikeys import api_key_create, api_key_revoke
from scoring.models import ApiKey

TOKEN_PREFIX = "sess_"  # noqa: S105 (a public prefix)
# ``sess_`` + 43 URL-safe characters (256 random bits). It can never be mistaken for an API
# key (``swamp_`` + 32 hex), so /ingest and /api/whoami refuse it without a second look.
TOKEN_PATTERN = re.compile(r"sess_[A-Za-z0-9_-]{43}")
KEY_NAME_MAX: int = ApiKey._meta.get_field("name").max_length  # type: ignore[assignment]


class SignInTokenInvalid(Exception):
    """The token is unknown, malformed, expired, already used, or its member is inactive."""


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def member_authenticate(
    *, request: HttpRequest, password: str, username: str | None = None, email: str | None = None
) -> User | None:
    """The active member with these credentials, or None; every attempt goes through axes.

    ``email`` is matched case-insensitively and must name exactly one account; otherwise the
    attempt still runs (and counts as a failure for the client's IP and the given text), so
    an unknown e-mail answers exactly like a wrong password. When the client or the account
    is locked out, returns None and leaves ``request.axes_locked_out`` set (see
    ``accounts.throttle.sign_in_locked_out``).
    """
    if email is not None:
        accounts = get_user_model().objects.filter(email__iexact=email)
        matches = list(accounts.values_list("username", flat=True)[:2])
        username = matches[0] if len(matches) == 1 else email
    user = authenticate(request, username=username, password=password)
    if user is not None:
        # A success clears the account's failure count, as a site login does (axes does that
        # on ``user_logged_in``, which this sign-in never sends: it opens no session).
        from axes.utils import reset

        reset(username=user.get_username())
    return user


@transaction.atomic
def cli_token_issue(*, member: User, via: str) -> str:
    """Issue a CLI sign-in token for ``member``; return its text (stored only hashed).

    The token is valid for ``CLI_SIGN_IN_TOKEN_TTL`` and can be spent once, at
    ``cli_token_redeem``. The member's spent and expired tokens are deleted on the way.
    """
    now = timezone.now()
    CliSignInToken.objects.filter(member=member).filter(
        Q(used_at__isnull=False) | Q(expires_at__lte=now)
    ).delete()
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    CliSignInToken.objects.create(
        member=member,
        token_hash=_token_hash(raw),
        via=via,
        created_at=now,
        expires_at=now + settings.CLI_SIGN_IN_TOKEN_TTL,
    )
    return raw


def _key_name_clean(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": "Give the key a name."})
    name = name.strip()
    if len(name) > KEY_NAME_MAX:
        raise ValidationError({"name": f"At most {KEY_NAME_MAX} characters."})
    return name


@transaction.atomic
def cli_token_redeem(*, token: str, name: object) -> tuple[ApiKey, str]:
    """Spend a sign-in token: create an ``ingest`` key named ``name`` for its member.

    Returns the key row and its plaintext. Single use under concurrency: the token is marked
    used by one conditional UPDATE, so of two simultaneous requests exactly one gets a key.
    Raises ``SignInTokenInvalid`` for a token that is malformed, unknown, expired, already
    spent, or whose member has been deactivated, and then ``ValidationError`` for a missing
    or over-long name (the token stays unspent).
    """
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        raise SignInTokenInvalid
    now = timezone.now()
    token_hash = _token_hash(token)
    spent = CliSignInToken.objects.filter(
        token_hash=token_hash, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if spent != 1:
        raise SignInTokenInvalid
    member = CliSignInToken.objects.select_related("member").get(token_hash=token_hash).member
    if not member.is_active:
        raise SignInTokenInvalid
    # Raising here rolls the UPDATE back: a request with a bad name leaves the token unspent.
    cleaned = _key_name_clean(name)
    return api_key_create(owner=member, scopes=[ApiKey.SCOPE_INGEST], name=cleaned)


def member_key_create(*, member: User, name: str) -> tuple[ApiKey, str]:
    """Create an ``ingest`` key of ``member``'s own; return the row and the plaintext.

    Raises ``ValidationError`` for an empty or over-long name.
    """
    return api_key_create(owner=member, scopes=[ApiKey.SCOPE_INGEST], name=_key_name_clean(name))


def member_key_revoke(*, member: User, key_id: int) -> ApiKey:
    """Revoke one of ``member``'s own keys (idempotent).

    Raises ``ApiKey.DoesNotExist`` when no key of that id belongs to ``member``.
    """
    api_key = ApiKey.objects.get(pk=key_id, owner=member)
    return api_key_revoke(api_key=api_key)
