"""Fixtures for fault tests: a private Redis, managed Celery processes, a task sender."""

import pytest
import redis
from celery import Celery

from tests.reliability.harness import Processes, RedisServer, needs_real_services


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A private redis-server on port 6390, so stopping it never disturbs anyone else."""
    ok, reason = needs_real_services()
    if not ok:
        pytest.skip(reason)
    server = RedisServer(tmp_path=tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server):
    """The private broker, running and empty: no message from an earlier test survives."""
    if not redis_server.ping():
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url())
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture
def processes(broker, tmp_path):
    """Start workers/beat against the test database and the private broker; stop them all."""
    procs = Processes(redis_url=broker.url(), tmp_path=tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def sender(broker):
    """A Celery client of the private broker, to deliver task messages by name."""
    app = Celery("fault-tests", broker=broker.url(), set_as_current=False)
    app.conf.broker_connection_retry_on_startup = True
    yield app
    app.close()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Factories set real passwords; the default PBKDF2 cost is for production, not tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
