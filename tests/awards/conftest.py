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
