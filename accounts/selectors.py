"""Reads of the accounts app."""

from django.contrib.auth.models import User

from scoring.models import ApiKey

KEYS_LIST_LIMIT = 200


def member_keys_list(*, member: User) -> list[ApiKey]:
    """``member``'s own API keys, usable ones first, newest first (one query)."""
    keys = ApiKey.objects.filter(owner=member).order_by("-created_at")[:KEYS_LIST_LIMIT]
    return sorted(keys, key=lambda key: key.revoked_at is not None)
