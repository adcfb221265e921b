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


@pytest.fixture(autouse=True)
def governance_limits(settings):
    """Explicit approval threshold and grant budget for the suite: out of the way by default.

    Tests written before four-eyes approval and budgets grant up to ``AWARD_MAX_POINTS`` at
    once and far more than a budget in total; they test granting, not governance. The
    governance tests (``tests/awards/test_governance_*.py``) set the real values — the
    defaults of ``AWARD_APPROVAL_THRESHOLD`` (10,000) and ``AWARD_GRANTER_BUDGET`` (50,000)
    are checked there too.
    """
    settings.AWARD_APPROVAL_THRESHOLD = 10**9
    settings.AWARD_GRANTER_BUDGET = 10**12


@pytest.fixture(scope="session", autouse=True)
def _audit_flush_allowed():
    """Let the test database flush the append-only audit table on SQLite.

    Transactional tests end with Django's flush, which on SQLite is ``DELETE FROM`` each
    table — refused by the audit table's DELETE trigger. Only here, only for the flush, the
    trigger is dropped and re-created around it. (PostgreSQL flushes with TRUNCATE, which the
    row triggers do not see; production keeps both refusals.)
    """
    from django.db import connection

    from audit.db import SQLITE_DELETE_TRIGGER_CREATE, SQLITE_DELETE_TRIGGER_DROP, TABLE

    if connection.vendor != "sqlite":
        yield
        return
    operations = type(connection.ops)
    original = operations.sql_flush

    def sql_flush(self, style, tables, **kwargs):
        statements = original(self, style, tables, **kwargs)
        if TABLE not in tables:
            return statements
        return [SQLITE_DELETE_TRIGGER_DROP, *statements, SQLITE_DELETE_TRIGGER_CREATE]

    operations.sql_flush = sql_flush
    yield
    operations.sql_flush = original


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
