"""Staff writes with their audit entry: each wraps one service and records what it did.

The wrapped service and the entry commit in one transaction, so there is never a write
without its entry nor an entry for a write that rolled back. (Grants, requests, decisions
and bulk files record their entries in their own services: ``awards.requests``,
``awards.bulk``.)
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db import transaction

from audit.services import audit_record
from awards.models import Award
from awards.services import RevokeResult, award_revoke
from scoring.apikeys import api_key_create, api_key_revoke
from scoring.models import ApiKey

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _key_snapshot(api_key: ApiKey) -> dict:
    return {
        "id": api_key.pk,
        "prefix": api_key.prefix,
        "owner": api_key.owner_id,
        "name": api_key.name,
        "scopes": list(api_key.scopes),
        "revoked_at": api_key.revoked_at,
    }


@transaction.atomic
def award_revoke_audited(*, award: Award, revoked_by: "User", reason: str) -> RevokeResult:
    """``award_revoke``, recording ``award.revoke`` when it revoked something."""
    result = award_revoke(award=award, revoked_by=revoked_by, reason=reason)
    if result.created:
        audit_record(
            action="award.revoke",
            actor=revoked_by,
            obj=award,
            member=award.recipient,
            before={"award": award.pk, "points": award.points, "revoked": False},
            after={"award": award.pk, "revoked": True, "reason": result.revocation.reason},
        )
    return result


@transaction.atomic
def api_key_create_audited(
    *, actor: "User", owner: "User", scopes: Iterable[str], name: str = ""
) -> tuple[ApiKey, str]:
    """``api_key_create`` on ``actor``'s authority, recording ``apikey.create`` (never the
    secret, only its prefix)."""
    api_key, plaintext = api_key_create(owner=owner, scopes=scopes, name=name, created_by=actor)
    audit_record(
        action="apikey.create",
        actor=actor,
        obj=api_key,
        member=owner,
        object_repr=f"{api_key.prefix}… of {owner.username}",
        after=_key_snapshot(api_key),
    )
    return api_key, plaintext


@transaction.atomic
def api_key_revoke_audited(*, actor: "User", api_key: ApiKey) -> ApiKey:
    """``api_key_revoke``, recording ``apikey.revoke`` when the key was still active."""
    before = _key_snapshot(api_key)
    already = api_key.revoked_at is not None
    api_key = api_key_revoke(api_key=api_key)
    if not already:
        audit_record(
            action="apikey.revoke",
            actor=actor,
            obj=api_key,
            member=api_key.owner,
            object_repr=f"{api_key.prefix}… of {api_key.owner.username}",
            before=before,
            after=_key_snapshot(api_key),
        )
    return api_key
