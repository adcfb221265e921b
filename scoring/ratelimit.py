"""A fixed-window request counter in the Django cache (Redis in production).

The limiter fails open: when the cache cannot be reached the request is allowed, and one
warning is logged when the cache goes away and one when it is back (``swampclub.outages``).
Ingest must keep accepting work while Redis is down, because PostgreSQL — not Redis — holds
every pending event.
"""

import logging
import math
import time

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from swampclub.outages import Dependency

logger = logging.getLogger("swampclub.ratelimit")

# The cache as the limiter sees it; an outage is logged once, not per request.
rate_limit_cache = Dependency(
    "rate limit cache",
    logger,
    consequence="requests are allowed without a limit",
)


def rate_limit_hit(*, bucket: str, limit: int, window_s: int) -> int | None:
    """Count one request against ``bucket``; None if allowed, else seconds to wait.

    Windows are aligned to multiples of ``window_s`` since the epoch, so every process
    shares one counter per bucket and window. The counter key expires with its window.
    Never raises: a cache error allows the request (fail open).
    """
    now = time.time()
    window_start = int(now // window_s) * window_s
    key = f"rl:{bucket}:{window_start}"
    try:
        backend = caches["default"]
        if isinstance(backend, RedisCache):
            count = _redis_hit(backend, key, window_s)
        else:
            count = _portable_hit(key, window_s)
    except Exception as exc:  # the cache is down or misbehaving: allow, never fail the request
        rate_limit_cache.failed(exc)
        return None
    rate_limit_cache.succeeded()
    if count <= limit:
        return None
    return max(1, math.ceil(window_start + window_s - now))


def _redis_hit(backend: RedisCache, key: str, window_s: int) -> int:
    # One round trip: INCR creates the counter at 1 when missing, and EXPIRE in the same
    # pipeline gives it its window's lifetime. Django's incr costs an EXISTS and an INCRBY,
    # two round trips per ingest request. The value is a plain integer, the same encoding
    # Django's RedisCache uses for ints, so cache.get/delete see the same counter.
    full_key = backend.make_and_validate_key(key)
    pipe = backend._cache.get_client(full_key, write=True).pipeline(transaction=False)
    pipe.incr(full_key)
    pipe.expire(full_key, window_s + 1)
    count, _ = pipe.execute()
    return int(count)


def _portable_hit(key: str, window_s: int) -> int:
    try:
        return cache.incr(key)
    except ValueError:
        # First request of the window. ``add`` is atomic, so when two processes race
        # here exactly one creates the counter and the other increments it.
        return 1 if cache.add(key, 1, timeout=window_s + 1) else cache.incr(key)


def rate_limit_reset(*, bucket: str, window_s: int) -> None:
    """Forget ``bucket``'s count in the current window (e.g. to unblock a key at once)."""
    window_start = int(time.time() // window_s) * window_s
    try:
        cache.delete(f"rl:{bucket}:{window_start}")
    except Exception as exc:  # nothing to forget when the cache is down
        rate_limit_cache.failed(exc, what=f"could not reset {bucket}")
