"""The suite's own isolation: what every test can rely on, whatever ran before it."""

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from scoring.ratelimit import rate_limit_hit
from tests.conftest import _cache_clear

pytestmark = pytest.mark.django_db


def test_sqlite_test_database_is_a_file_each_thread_can_open():
    if connection.vendor != "sqlite":
        assert connection.vendor == "postgresql"
        return
    assert not connection.is_in_memory_db()
    assert connection.settings_dict["NAME"].endswith("swampclub.sqlite3")
    assert not str(connection.settings_dict["NAME"]).startswith(str(settings.VAR_DIR))


def test_broker_folder_is_private_to_the_test_run(broker_folder):
    from swampclub.celery import app

    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert broker_folder is None
        return
    options = app.conf.broker_transport_options
    assert options["data_folder_in"] == str(broker_folder / "queue")
    assert not options["data_folder_in"].startswith(str(settings.VAR_DIR))
    assert list((broker_folder / "queue").iterdir()) == []


def test_cache_clear_forgets_rate_limit_counters_but_not_other_keys():
    assert [rate_limit_hit(bucket="isolation", limit=1, window_s=60) for _ in range(2)] == [
        None,
        pytest.approx(30, abs=30),
    ]
    cache.set("isolation-other", 1)
    _cache_clear()
    assert rate_limit_hit(bucket="isolation", limit=1, window_s=60) is None
    assert cache.get("isolation-other") is None
    if settings.REDIS_URL:
        # Only the site's keys go: the broker's bindings in the same Redis database stay.
        from django.core.cache import caches

        client = caches["default"]._cache.get_client(write=True)
        client.set("not-the-site", "1")
        _cache_clear()
        assert client.get("not-the-site") == b"1"
        client.delete("not-the-site")
