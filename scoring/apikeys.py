"""API keys for ``POST /ingest``: creation, authentication and revocation.

A key reads ``swamp_`` + 32 lowercase hex characters (128 random bits). Only its SHA-256 is
stored: the key is high-entropy, so a fast hash is as safe as a password hasher here and
costs microseconds per request instead of hundreds of milliseconds. The first 14 characters
(``swamp_`` + 8 hex) are the public, unique ``prefix`` that finds the row in one indexed
query; the hash comparison is constant-time.
"""

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from scoring.models import ApiKey

KEY_PREFIX = "swamp_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8
KEY_PATTERN = re.compile(r"swamp_[0-9a-f]{32}")
# ``last_used_at`` is refreshed at most once a minute per key, so a busy key costs no write
# per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


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


def api_key_create(
    *, owner: AbstractBaseUser, scopes: Iterable[str], name: str = ""
) -> tuple[ApiKey, str]:
    """Create a key for ``owner`` with ``scopes``; return the row and the plaintext key.

    The plaintext exists only in the return value: the row holds its prefix and SHA-256.
    Raises ``ValidationError`` for an empty or unknown scope list or a name over 100
    characters. A prefix collision (one in four billion) is retried with a fresh key.
    """
    cleaned = _scopes_clean(scopes)
    name = name.strip()
    if len(name) > ApiKey._meta.get_field("name").max_length:
        raise ValidationError({"name": "At most 100 characters."})
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


_PREFIX_SENTINEL = "swamp_prefix?"


@functools.cache
def _lookup_query(alias: str) -> tuple[str, tuple]:
    # The lookup runs on every ingest request, and compiling the ORM query costs several
    # times more than running it; the SQL depends only on the database, so compile it once.
    query = ApiKey.objects.using(alias).filter(prefix=_PREFIX_SENTINEL, owner__is_active=True)
    return query.order_by().query.sql_with_params()


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The active key whose text is ``raw``, or None.

    None for anything malformed (no query), unknown, revoked, or owned by an inactive user.
    One indexed query by prefix (it checks the owner without loading it: use
    ``owner_id``); the hash is compared in constant time. ``last_used_at`` is refreshed only
    when it is more than a minute old, by a conditional UPDATE, so concurrent requests
    write it at most once a minute.
    """
    if not isinstance(raw, str) or not KEY_PATTERN.fullmatch(raw):
        return None
    sql, params = _lookup_query(DEFAULT_DB_ALIAS)
    prefix = raw[:PREFIX_LENGTH]
    found = list(ApiKey.objects.raw(sql, [prefix if p == _PREFIX_SENTINEL else p for p in params]))
    api_key = found[0] if found else None
    if (
        api_key is None
        or api_key.revoked_at is not None
        or not hmac.compare_digest(api_key.key_hash, api_key_hash(raw))
    ):
        return None
    now = timezone.now()
    cutoff = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is None or api_key.last_used_at < cutoff:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke ``api_key`` from now on; idempotent (a revoked key keeps its first time).

    Requests presenting the key are answered 401 from the next request on. Events it
    already delivered stay as they are.
    """
    now = timezone.now()
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key
