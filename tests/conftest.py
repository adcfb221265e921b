"""Fixtures shared by the whole suite."""

import pytest
from django.contrib.auth.models import Permission

from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _wake_debounce_reset():
    """Every test starts with fresh wake-up debouncing: a wake published by an earlier test
    in this process must not silence the wake a later test (and its worker) waits for."""
    from scoring.tasks import wake_debounce_reset

    wake_debounce_reset()


@pytest.fixture
def member(db):
    """A plain member."""
    return UserFactory()


@pytest.fixture
def staff_user(db):
    """A staff user with the award permissions."""
    user = UserFactory(username="warden", staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="awards",
            codename__in=["add_award", "add_awardrevocation", "view_award"],
        )
    )
    return user


@pytest.fixture
def staff_client(client, staff_user):
    """A test client logged in as ``staff_user``."""
    client.force_login(staff_user)
    return client


@pytest.fixture
def ingest_key(member):
    """An ``ingest``-scoped API key owned by ``member``: ``(ApiKey, plaintext key)``."""
    from scoring.apikeys import api_key_create

    return api_key_create(owner=member, scopes=["ingest"], name="laptop")


@pytest.fixture
def htmx_headers():
    """Headers that make a test-client request look like an htmx request."""
    return {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _dependencies_reset():
    """Every test starts with every dependency up: an outage logged by an earlier test in
    this process must not hide the "unavailable" line a later test looks for."""
    from swampclub.outages import dependencies_reset

    dependencies_reset()
