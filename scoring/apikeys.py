"""API keys for ``POST /ingest``: creation, authentication, authority and revocation.

A key reads ``swamp_`` + 32 lowercase hex characters (128 random bits). Only its SHA-256 is
stored: the key is high-entropy, so a fast hash is as safe as a password hasher here and
costs microseconds per request instead of hundreds of milliseconds. The first 14 characters
(``swamp_`` + 8 hex) are the public, unique ``prefix`` that finds the row in one indexed
query; the hash comparison is constant-time.

Authority (SPEC §10) is decided at creation (here) and at every use (``scoring.key_authority``):

- A key acts with what its owner may do *now*. An inactive owner's key is refused (403).
  The ``award`` scope is effective only while the owner is active staff holding
  ``awards.add_award`` (a superuser holds every permission); taking that away suspends the
  scope from the next request on, giving it back restores it. ``ingest`` needs only an
  active owner. The check is part of the one query that finds the key.
- An ``award`` key is created only by its owner or a superuser, and only for an owner who
  holds that authority at the time. Key managers (``scoring.add_apikey``) create ``ingest``
  keys for any active member, never keys that act with someone else's grant authority.
"""

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from scoring.key_authority import (
    AWARD_PERMISSION,
    NO_AUTHORITY,
    OwnerAuthority,
    api_key_owner_authority,
    api_key_scope_problem,
    api_key_scopes_effective,
    api_key_suspension,
    api_keys_list,
    authority_attach,
    owners_authority,
    with_owner_authority,
)
from scoring.models import ApiKey
from swampclub.dialect import raw_prepared

# The authority rules live in scoring.key_authority; callers may import them from here.
__all__ = [
    "AWARD_PERMISSION",
    "MANAGE_PERMISSION",
    "ApiKeyRefused",
    "OwnerAuthority",
    "api_key_authenticate",
    "api_key_authorize",
    "api_key_create",
    "api_key_from_request",
    "api_key_hash",
    "api_key_owner_authority",
    "api_key_revoke",
    "api_key_scope_problem",
    "api_key_scopes_effective",
    "api_key_suspension",
    "api_keys_list",
    "owners_authority",
]

KEY_PREFIX = "swamp_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8
KEY_PATTERN = re.compile(r"swamp_[0-9a-f]{32}")
# ``last_used_at`` is refreshed at most once a minute per key, so a busy key costs no write
# per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# Who may create ``ingest`` keys for other members and revoke any key (the staff page).
MANAGE_PERMISSION = "scoring.add_apikey"


def api_key_hash(raw: str) -> str:
    """The stored form of a key: the SHA-256 hex digest of its full text."""
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_from_request(request: HttpRequest) -> str:
    """The key a request presents: ``x-api-key``, else ``Authorization: Bearer``; or ``""``."""
    raw = request.headers.get("x-api-key")
    if raw:
        return raw.strip()
    scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    return ""


# --- Creation --------------------------------------------------------------------------------


def _scopes_clean(scopes: Iterable[str]) -> list[str]:
    cleaned = sorted(set(scopes))
    if not cleaned:
        raise ValidationError({"scopes": "Give at least one scope."})
    unknown = [scope for scope in cleaned if scope not in ApiKey.SCOPES]
    if unknown:
        raise ValidationError(
            {"scopes": f"Unknown scope(s) {', '.join(unknown)}; choose from {ApiKey.SCOPES}."}
        )
    return cleaned


def _creation_check(*, owner: User, scopes: list[str], created_by: User | None) -> None:
    """Raise unless ``created_by`` may create a key with ``scopes`` for ``owner`` now."""
    for_someone_else = created_by is not None and created_by.pk != owner.pk
    if for_someone_else and not (
        created_by.is_active and (created_by.is_superuser or created_by.has_perm(MANAGE_PERMISSION))  # type: ignore[union-attr]
    ):
        raise PermissionDenied("Only key managers create API keys for other members.")
    authority = owners_authority(owner_ids=[owner.pk]).get(owner.pk, NO_AUTHORITY)
    if not authority.active:
        raise ValidationError({"owner": "This account is inactive: its keys would be refused."})
    if ApiKey.SCOPE_AWARD not in scopes:
        return
    if for_someone_else and not created_by.is_superuser:  # type: ignore[union-attr]
        raise ValidationError(
            {
                "scopes": "Only its owner (or a superuser) can create a key with the award "
                "scope: it grants awards with the owner's authority."
            }
        )
    if not (authority.staff and authority.award_permission):
        raise ValidationError(
            {
                "scopes": f"The award scope needs an owner who is staff with the "
                f"{AWARD_PERMISSION} permission; {owner.get_username()} is not."
            }
        )


def api_key_create(
    *,
    owner: User,
    scopes: Iterable[str],
    name: str = "",
    created_by: User | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for ``owner`` with ``scopes``; return the row and the plaintext key.

    ``created_by`` is the user creating it on the site; None means the owner's own
    authority is all that is used — the owner making their own key, or the server operator
    (``manage.py create_api_key``), who gives a key no more than its owner may do.

    Rules, read from the database now: the owner is active; a key for someone else needs a
    key manager (``scoring.add_apikey``) or a superuser (``PermissionDenied``); an ``award``
    key is created only by its owner or a superuser, and only for an owner who is staff
    with ``awards.add_award`` (``ValidationError`` on ``scopes``). Also ``ValidationError``
    for an empty or unknown scope list or a name over 100 characters.

    The plaintext exists only in the return value: the row holds its prefix and SHA-256. A
    prefix collision (one in four billion) is retried with a fresh key.
    """
    cleaned = _scopes_clean(scopes)
    name = name.strip()
    if len(name) > ApiKey._meta.get_field("name").max_length:  # type: ignore[operator]
        raise ValidationError({"name": "At most 100 characters."})
    _creation_check(owner=owner, scopes=cleaned, created_by=created_by)
    for _attempt in range(5):
        raw = KEY_PREFIX + secrets.token_hex(16)
        try:
            # A savepoint, so a colliding prefix leaves any outer transaction usable.
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    owner=owner,
                    name=name,
                    scopes=cleaned,
                    prefix=raw[:PREFIX_LENGTH],
                    key_hash=api_key_hash(raw),
                )
        except IntegrityError:
            continue
        return api_key, raw
    raise RuntimeError("could not find a free API key prefix")  # pragma: no cover


# --- Authentication --------------------------------------------------------------------------


class ApiKeyRefused(Exception):
    """A request's key cannot be used: ``status`` 401 (no valid key) or 403 (owner)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_PREFIX_SENTINEL = "swamp_prefix?"


@functools.cache
def _lookup_query(alias: str) -> tuple[str, tuple]:
    # The lookup runs on every ingest request, and compiling the ORM query costs several
    # times more than running it; the SQL depends only on the database, so compile it once.
    # The owner's flags and permission come with the key: one query decides both.
    query = with_owner_authority(ApiKey.objects.using(alias).filter(prefix=_PREFIX_SENTINEL))
    return query.order_by().query.sql_with_params()


def api_key_authorize(raw: str) -> ApiKey:
    """The key whose text is ``raw``, with its owner's authority now; or ``ApiKeyRefused``.

    401 for anything malformed (no query), unknown or revoked; 403 when the owner's
    account is inactive. The returned key's effective scopes (``api_key_scopes_effective``)
    need no further query. One indexed query by prefix, joining the owner and the
    permission check; the hash is compared in constant time. ``last_used_at`` is refreshed
    only when it is more than a minute old, by a conditional UPDATE, so concurrent requests
    write it at most once a minute.
    """
    if not isinstance(raw, str) or not KEY_PATTERN.fullmatch(raw):
        raise ApiKeyRefused(401, "missing, unknown or revoked API key")
    sql, params = _lookup_query(DEFAULT_DB_ALIAS)
    prefix = raw[:PREFIX_LENGTH]
    # A prepared statement on PostgreSQL: planned once per connection, not per request.
    found = list(
        raw_prepared(ApiKey, sql, tuple(prefix if p == _PREFIX_SENTINEL else p for p in params))
    )
    api_key = found[0] if found else None
    if (
        api_key is None
        or api_key.revoked_at is not None
        or not hmac.compare_digest(api_key.key_hash, api_key_hash(raw))
    ):
        raise ApiKeyRefused(401, "missing, unknown or revoked API key")
    authority = api_key_owner_authority(authority_attach(api_key))
    if not authority.active:
        raise ApiKeyRefused(403, "this API key's owner account is inactive")
    now = timezone.now()
    cutoff = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is None or api_key.last_used_at < cutoff:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The usable key whose text is ``raw``, or None (``api_key_authorize`` without reasons).

    None for anything malformed, unknown, revoked, or owned by an inactive user.
    """
    try:
        return api_key_authorize(raw)
    except ApiKeyRefused:
        return None


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke ``api_key`` from now on; idempotent (a revoked key keeps its first time).

    Requests presenting the key are answered 401 from the next request on. Events it
    already delivered stay as they are. Key managers revoke any key: revoking only ever
    takes authority away.
    """
    now = timezone.now()
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key
