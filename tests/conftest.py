"""Fixtures shared by the whole suite.

Every test starts from the same clean shared state, whatever ran before it and in whatever
order (the suite runs in random order, pytest-randomly): see ``_clean_shared_state``.
"""

import copy
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.test.utils import UserSettingsHolder

from tests.factories import UserFactory


@pytest.fixture(scope="session")
def test_var_dir(tmp_path_factory) -> Path:
    """The test run's own ``var/`` folder, laid out as ``make run``'s: on SQLite it holds
    the test database (``swampclub.sqlite3``) and the filesystem broker (``broker/``), so a
    worker process started with ``SWAMPCLUB_VAR_DIR`` set to it (and no ``DATABASE_URL`` or
    ``REDIS_URL``) works on exactly what the test sees. Never the developer's ``var/``."""
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, test_var_dir):
    """On SQLite the test database is a file, not Django's default in-memory database.

    An in-memory database exists only inside one connection, so the live server has to
    share the test thread's connection with every request thread it starts; two requests
    at once (htmx fires them in parallel) then use one SQLite handle concurrently and fail
    with "bad parameter or other API misuse". A file gives each thread (and any process)
    its own connection, with the same WAL mode, busy timeout and immediate transactions as
    ``make run``.
    """
    for db in django_settings.DATABASES.values():
        if db["ENGINE"] == "django.db.backends.sqlite3" and not db.get("TEST", {}).get("NAME"):
            db.setdefault("TEST", {})["NAME"] = str(test_var_dir / "swampclub.sqlite3")


@pytest.fixture(scope="session")
def broker_folder(test_var_dir) -> Path | None:
    """The filesystem broker's folder for this test run (None on Redis).

    Without ``REDIS_URL`` Celery's filesystem transport keeps messages under ``var/broker``;
    tests publish wake-ups there, which a later ``make run`` worker would find. The run uses
    ``test_var_dir``'s instead, emptied before every test (``_clean_shared_state``).
    """
    if not django_settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return None
    from swampclub.celery import app

    folder = test_var_dir / "broker"
    options = {
        **django_settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    django_settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    app.conf.broker_transport_options = options
    if app._pool is not None:  # nothing has published yet, but never keep an old connection
        app._pool.force_close_all()
        app._pool = None
    return folder


def _cache_clear() -> None:
    """Empty the site's cache: rate-limit counters, cached boards, anything else.

    On Redis only the keys under the site's ``KEY_PREFIX`` go: the broker's queues and
    bindings live in the same Redis database, and deleting kombu's bindings would make the
    next publish fail to route (``cache.clear()`` is ``FLUSHDB``).
    """
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{backend.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        backend.clear()


def _settings_now() -> tuple[object, dict]:
    # The settings underneath any overrides and a deep copy of their values, read from their
    # __dict__ (reading deprecated settings through attributes would warn). DATABASES
    # belongs to the test runner (pytest-django renames the test databases).
    root = django_settings._wrapped
    while isinstance(root, UserSettingsHolder):
        root = root.default_settings
    values = {
        name: copy.deepcopy(value)
        for name, value in vars(root).items()
        if name.isupper() and name != "DATABASES"
    }
    return root, values


# The settings once the first test's setup is done: the session fixtures (pytest-django's
# test environment, the private broker folder) have made their changes for the whole run.
_settings_baseline: dict[str, tuple[object, dict]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """Record the settings once, after the first test's setup."""
    result = yield
    if not _settings_baseline:
        _settings_baseline["at_start"] = _settings_now()
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After every fixture of the test is torn down, the settings must be as they were.

    A test (or fixture) that changed a setting without the ``settings`` fixture or
    ``override_settings``, or left an override enabled, fails here naming it, and the
    settings are put back so the tests after it are not affected.
    """
    result = yield
    if not _settings_baseline or nextitem is None:
        # The first test's setup failed, or this is the end of the run: session fixtures
        # (pytest-django's test environment) have just restored what they had set.
        return result
    baseline_wrapped, baseline = _settings_baseline["at_start"]
    problems = []
    if django_settings._wrapped is not baseline_wrapped:
        django_settings._wrapped = baseline_wrapped
        problems.append("an override_settings left enabled")
    _, current = _settings_now()
    changed = sorted(
        name
        for name in baseline.keys() | current.keys()
        if baseline.get(name, _MISSING) != current.get(name, _MISSING)
    )
    for name in changed:
        if name in baseline:
            setattr(baseline_wrapped, name, copy.deepcopy(baseline[name]))
        else:
            delattr(baseline_wrapped, name)
    if changed:
        problems.append(f"settings changed: {', '.join(changed)}")
    if problems:
        pytest.fail(f"the test left {' and '.join(problems)}")
    return result


@pytest.fixture(autouse=True)
def _clean_shared_state(broker_folder):
    """Every test starts from clean shared state (settings are checked after it, by
    ``pytest_runtest_teardown``).

    The cache is emptied: on SQLite, object ids repeat from test to test, so a rate-limit
    counter ``ingest:<key id>`` of an earlier test would count against a later test's key.
    The broker folder is emptied. Wake-up debouncing is forgotten: a wake published by an
    earlier test must not silence the wake a later test (and its worker) waits for.
    """
    from scoring.wakeups import wake_debounce_reset

    _cache_clear()
    if broker_folder is not None:
        for sub in ("queue", "processed", "control"):
            for path in (broker_folder / sub).iterdir():
                path.unlink()
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


_MISSING = object()


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


def pytest_terminal_summary(terminalreporter, config) -> None:
    """Name the random order's seed even under ``-q``, so any failing order can be replayed."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and config.pluginmanager.hasplugin("randomly"):
        terminalreporter.write_line(f"random order: replay with -p randomly --randomly-seed={seed}")


def _skip_is_allowed(reason: str) -> bool:
    """Whether a skip is forgiven under ``SWAMPCLUB_STRICT_SKIPS=1`` (as CI runs the suite).

    Only a test that needs PostgreSQL, on SQLite, or one that needs Redis, without
    ``REDIS_URL``, may skip; anything else skipped (Chromium missing, redis-server missing,
    a typo in a skip condition) is a failure, so neither configuration passes by skipping.
    """
    from django.db import connection

    if reason.startswith("needs PostgreSQL"):
        return connection.vendor != "postgresql"
    if reason.startswith(("needs Redis", "needs the Redis")):
        return not django_settings.REDIS_URL
    return False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``SWAMPCLUB_STRICT_SKIPS=1`` turn a skip that is not allowed into a failure."""
    report = yield
    if report.skipped and os.environ.get("SWAMPCLUB_STRICT_SKIPS") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if not _skip_is_allowed(reason):
            report.outcome = "failed"
            report.longrepr = f"skipped, which SWAMPCLUB_STRICT_SKIPS=1 forbids here: {reason}"
    return report
