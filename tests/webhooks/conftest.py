"""Fixtures for the webhook tests."""

import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The factories set real passwords; a deliberately slow hasher only costs test time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    """Local receivers allowed; short timeouts and backoff so retries happen in the test."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_REQUIRE_HTTPS = False
    settings.WEBHOOK_TIMEOUT_S = 1.0
    settings.WEBHOOK_BACKOFF_BASE_S = 0.05
    settings.WEBHOOK_BACKOFF_MAX_S = 0.2
    settings.WEBHOOK_MAX_ATTEMPTS = 5
    return settings


@pytest.fixture
def receivers():
    """Start receivers with ``receivers(secret=..., script=[...])``; all stop at teardown."""
    from tests.webhooks.receiver import Receiver

    started: list[Receiver] = []

    def start(**options) -> Receiver:
        receiver = Receiver(**options).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def granter(db):
    """A staff member who grants awards."""
    from tests.factories import UserFactory

    return UserFactory(username="granter", staff=True)
