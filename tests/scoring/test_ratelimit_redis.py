"""The rate limiter's Redis path: one pipelined INCR + EXPIRE per hit."""

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from scoring.ratelimit import rate_limit_hit, rate_limit_reset

pytestmark = pytest.mark.skipif(
    not isinstance(caches["default"], RedisCache), reason="needs the Redis cache (REDIS_URL)"
)


def test_counts_in_redis_with_the_window_lifetime(monkeypatch):
    monkeypatch.setattr("scoring.ratelimit.time.time", lambda: 1_000_000.5)
    key = "rl:test-bucket:999960"  # the 60 s window holding that instant
    rate_limit_reset(bucket="test-bucket", window_s=60)

    assert [rate_limit_hit(bucket="test-bucket", limit=2, window_s=60) for _ in range(3)] == [
        None,
        None,
        20,  # 999960 + 60 - 1000000.5, rounded up
    ]
    assert cache.get(key) == 3  # the same counter Django's cache API reads
    backend = caches["default"]
    full_key = backend.make_and_validate_key(key)
    ttl = backend._cache.get_client(full_key).ttl(full_key)
    assert 0 < ttl <= 61
    rate_limit_reset(bucket="test-bucket", window_s=60)
    assert rate_limit_hit(bucket="test-bucket", limit=2, window_s=60) is None
    cache.delete(key)
