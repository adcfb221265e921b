"""Fixtures for the award tests."""

import pytest

from tests.factories import UserFactory


@pytest.fixture
def granter(db):
    """A staff member who grants awards (the granter of record)."""
    return UserFactory(username="granter", granter=True)


@pytest.fixture
def award_key(granter):
    """An API key with both scopes owned by ``granter``: ``(ApiKey, plaintext key)``."""
    from scoring.apikeys import api_key_create

    return api_key_create(owner=granter, scopes=["ingest", "award"], name="award bot")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The factories set real passwords; a deliberately slow hasher only costs test time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- award governance (test_governance_*.py) --------------------------------------------------


def staff_with(username: str, *codenames: str, superuser: bool = False):
    """A staff user holding the given ``awards`` permissions."""
    from django.contrib.auth.models import Permission

    user = UserFactory(username=username, staff=True, is_superuser=superuser)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="awards", codename__in=codenames)
    )
    return user


@pytest.fixture
def governance(settings):
    """The shipped governance settings: approval above 10,000, a 50,000-point budget."""
    settings.AWARD_APPROVAL_THRESHOLD = 10_000
    settings.AWARD_GRANTER_BUDGET = 50_000
    settings.AWARD_BUDGET_EXEMPT_SUPERUSERS = False
    settings.AWARD_REQUEST_TTL_DAYS = 14
    return settings


@pytest.fixture
def requester(db):
    """A staff member who grants (and so requests above the threshold)."""
    return staff_with("requester", "add_award", "view_award", "add_awardrevocation")


@pytest.fixture
def approver(db):
    """A second staff member who may approve requests."""
    return staff_with("approver", "approve_award", "view_award", "add_award")
