"""What an API key's owner may do now: the authority behind every key scope (SPEC §10).

Decided here, at creation and at every use, and nowhere else: a key acts with what its
owner may do *now*. An inactive owner's key is refused. The ``award`` scope is effective
only while the owner is active staff holding ``awards.add_award`` (a superuser holds every
permission); ``ingest`` needs only an active owner. ``scoring.apikeys`` creates,
authenticates and revokes keys with these rules.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists, F, OuterRef, QuerySet, Subquery

from scoring.models import ApiKey
from swampclub.memo import InstanceMemo

# The ``award`` scope grants with its owner's authority: ``is_staff`` plus this permission.
# It belongs to the awards app and is named as text, because scoring never imports awards.
AWARD_PERMISSION = "awards.add_award"


@dataclass(frozen=True)
class OwnerAuthority:
    """What a key's owner may do now: an active account; staff; holds ``awards.add_award``."""

    active: bool
    staff: bool
    award_permission: bool

    def scope_problem(self, scope: str) -> str | None:
        """Why ``scope`` is suspended for this owner now, or None when it is effective."""
        if not self.active:
            return "the owner's account is inactive"
        if scope == ApiKey.SCOPE_AWARD:
            if not self.staff:
                return "the owner is no longer staff"
            if not self.award_permission:
                return f"the owner no longer holds the {AWARD_PERMISSION} permission"
        return None


NO_AUTHORITY = OwnerAuthority(active=False, staff=False, award_permission=False)


def _award_permission_annotations(user_ref: str) -> dict[str, Any]:
    """``EXISTS`` subqueries: the user at ``user_ref`` holds the award permission directly,
    or through a group — what ``ModelBackend`` consults, as part of the caller's query.

    The permission's id is an uncorrelated subquery (evaluated once per query), so each
    ``EXISTS`` probes one unique index of a link table: cheap to plan and to run on the
    ingest hot path, and never stale (no id is cached in the process).
    """
    app_label, codename = AWARD_PERMISSION.split(".")
    user_model = get_user_model()
    # Looked up through the model's metadata (no hard-coded link tables): dynamic, so Any.
    user_permissions: Any = user_model._meta.get_field("user_permissions")
    groups: Any = user_model._meta.get_field("groups")
    permission_model = user_permissions.remote_field.model
    permission_id = Subquery(
        permission_model.objects.filter(
            codename=codename,
            content_type=Subquery(
                # The permission's model: ``add_award`` is the awards app's Award permission.
                ContentType.objects.filter(app_label=app_label, model="award").values("pk")[:1]
            ),
        )
        .order_by()  # Permission's default ordering would join content types again
        .values("pk")[:1]
    )
    group_model = groups.remote_field.model
    group_permissions = group_model._meta.get_field("permissions").remote_field.through
    user_id = f"{user_permissions.m2m_field_name()}_id"
    direct = user_permissions.remote_field.through.objects.filter(
        **{
            user_id: OuterRef(user_ref),
            f"{user_permissions.m2m_reverse_field_name()}_id": permission_id,
        }
    )
    user_groups = groups.remote_field.through.objects.filter(
        **{f"{groups.m2m_field_name()}_id": OuterRef(OuterRef(user_ref))}
    ).values(f"{groups.m2m_reverse_field_name()}_id")
    via_group = group_permissions.objects.filter(
        group_id__in=user_groups, permission_id=permission_id
    )
    return {"award_perm_direct": Exists(direct), "award_perm_group": Exists(via_group)}


def _authority(active: Any, staff: Any, superuser: Any, direct: Any, group: Any) -> OwnerAuthority:
    # SQLite returns annotated booleans as 0/1. As in ModelBackend, an inactive user holds
    # no permission and an active superuser holds them all.
    return OwnerAuthority(
        active=bool(active),
        staff=bool(staff),
        award_permission=bool(active) and bool(superuser or direct or group),
    )


def owners_authority(*, owner_ids: Iterable[int]) -> dict[int, OwnerAuthority]:
    """The authority of each user in ``owner_ids`` as of now, in one query.

    Read from the database, never from a user object's permission cache, so a right taken
    away a moment ago already counts. Unknown ids are absent from the result.
    """
    rows = (
        get_user_model()
        .objects.filter(pk__in=set(owner_ids))
        .annotate(**_award_permission_annotations("pk"))
        .values_list(  # type: ignore[misc]  # the annotations' names are built at run time
            "pk", "is_active", "is_staff", "is_superuser", "award_perm_direct", "award_perm_group"
        )
    )
    return {pk: _authority(*flags) for pk, *flags in rows}


def with_owner_authority(queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
    return queryset.annotate(
        owner_is_active=F("owner__is_active"),
        owner_is_staff=F("owner__is_staff"),
        owner_is_superuser=F("owner__is_superuser"),
        **_award_permission_annotations("owner_id"),
    )


# The owner's authority as read with the key (or on first need), for the key object's life:
# one request for an authenticated key.
_owner_authorities: InstanceMemo[OwnerAuthority] = InstanceMemo()


def authority_attach(api_key: ApiKey) -> ApiKey:
    # Keys loaded through ``with_owner_authority`` carry their owner's flags.
    _owner_authorities.set(
        api_key,
        _authority(
            api_key.owner_is_active,  # type: ignore[attr-defined]
            api_key.owner_is_staff,  # type: ignore[attr-defined]
            api_key.owner_is_superuser,  # type: ignore[attr-defined]
            api_key.award_perm_direct,  # type: ignore[attr-defined]
            api_key.award_perm_group,  # type: ignore[attr-defined]
        ),
    )
    return api_key


def api_key_owner_authority(api_key: ApiKey) -> OwnerAuthority:
    """The owner's authority for ``api_key``: loaded with the key when it was authenticated
    (no query), else read now (one query) and kept on the object for its request."""
    return _owner_authorities.get_or_set(
        api_key,
        lambda: owners_authority(owner_ids=[api_key.owner_id]).get(api_key.owner_id, NO_AUTHORITY),
    )


def api_key_scope_problem(api_key: ApiKey, scope: str) -> str | None:
    """Why ``api_key`` cannot act with ``scope`` now — it lacks it, or the owner no longer
    may — or None when it can."""
    if scope not in api_key.scopes:
        return f"this API key lacks the {scope!r} scope"
    problem = api_key_owner_authority(api_key).scope_problem(scope)
    if problem is not None:
        return f"the {scope!r} scope of this API key is suspended: {problem}"
    return None


def api_key_scopes_effective(api_key: ApiKey) -> frozenset[str]:
    """The scopes ``api_key`` may act with now: its scopes its owner still has the right to."""
    authority = api_key_owner_authority(api_key)
    return frozenset(s for s in api_key.scopes if authority.scope_problem(s) is None)


def api_key_suspension(api_key: ApiKey) -> str | None:
    """Why some scope of an unrevoked key is suspended now (for the staff key list), or None."""
    if api_key.revoked_at is not None:
        return None
    authority = api_key_owner_authority(api_key)
    if not authority.active:
        return authority.scope_problem(ApiKey.SCOPE_INGEST)
    problems = [
        f"{scope} scope: {problem}"
        for scope in api_key.scopes
        if (problem := authority.scope_problem(scope)) is not None
    ]
    return "; ".join(problems) or None


def api_keys_list(*, limit: int) -> list[ApiKey]:
    """The newest ``limit`` keys with their owners and each one's ``suspension`` (or None).

    One query: the owner and the owner's authority come with the keys.
    """
    keys = list(
        with_owner_authority(ApiKey.objects.select_related("owner")).order_by("-created_at")[:limit]
    )
    for api_key in keys:
        authority_attach(api_key)
        api_key.suspension = api_key_suspension(api_key)  # type: ignore[attr-defined]
    return keys
