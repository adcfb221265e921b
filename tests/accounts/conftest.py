"""Fixtures for the accounts tests: a member whose credentials are the recorded ones."""

import json
from pathlib import Path

import pytest

from tests.factories import UserFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cli-auth"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every failed attempt hashes a password; the production cost would only slow the suite.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def recorded(name: str) -> dict:
    """One recorded CLI request (``tests/fixtures/cli-auth/<name>``)."""
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def alice(db):
    """The member the recorded sign-in names, with the recorded password."""
    body = recorded("1-sign-in-username.json")["body"]
    email = recorded("1b-sign-in-email.json")["body"]["email"]
    return UserFactory(
        username=body["username"],
        email=email,
        first_name="Alice",
        last_name="Marsh",
        password=body["password"],
    )


@pytest.fixture
def alice_password() -> str:
    return recorded("1-sign-in-username.json")["body"]["password"]
