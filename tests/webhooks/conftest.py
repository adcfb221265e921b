"""Fixtures for the webhook tests."""

import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The factories set real passwords; a deliberately slow hasher only costs test time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
