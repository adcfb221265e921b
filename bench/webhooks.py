"""``python -m bench.webhooks``: 10,000 tier changes through the outbox to a local receiver.

By default one score batch lifts N members (default 10,000, ``--members``) into tier 2 at
once (a burst): the batch writes N ``tier.changed`` outbox rows in its transaction; on
commit the dispatcher fans them out to one JSON endpoint, and a real Celery worker
(``-Q webhooks``, threads pool) POSTs them to a local receiver (``http.server``) that
verifies every signature with the ``standardwebhooks`` library. With ``--rate R`` the same
N tier changes are offered at R per second instead (a score batch of R/10 members every
0.1 s), which is what a lag goal under a sustained rate measures. Reported: deliveries per
second (first to last arrival) and the lag from the event's time (its ``timestamp``, the
batch's clock) to its arrival: p50, p95, max. The bench database
(``BENCH_WEBHOOKS_DATABASE_URL``, default ``swampclub_webhooks_bench`` on the local server)
is recreated; Redis is ``REDIS_URL``. Prints a table, then the JSON object as the last
line.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/swampclub_webhooks_bench"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class _Receiver:
    """Counts verified deliveries and their lag (arrival - event timestamp)."""

    def __init__(self) -> None:
        self.secret = ""
        self.lags: list[float] = []
        self.arrivals: list[float] = []
        self.ids: set[str] = set()
        self.bad = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                from standardwebhooks.webhooks import Webhook, WebhookVerificationError

                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                now = time.time()
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    event = Webhook(receiver.secret).verify(body, headers)
                    at = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
                    with receiver.lock:
                        if headers["webhook-id"] not in receiver.ids:
                            receiver.ids.add(headers["webhook-id"])
                            receiver.lags.append(now - at.timestamp())
                            receiver.arrivals.append(now)
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.bad += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            # A sender opens its connections at once; with the default accept backlog (5)
            # the kernel drops the extra SYNs and the client retries them seconds later.
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _offer(users: list, *, rate: float, score, snapshot) -> None:
    """Score the members in batches of rate/10 every 0.1 s (each batch one transaction)."""
    from django.utils import timezone

    chunk = max(1, round(rate / 10))
    tick = chunk / rate
    next_at = time.monotonic()
    for start in range(0, len(users), chunk):
        now = timezone.now()
        snapshot.objects.bulk_create(
            [snapshot(member=u, enqueued_at=now) for u in users[start : start + chunk]]
        )
        score()
        next_at += tick
        time.sleep(max(0.0, next_at - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    """Run the webhook bench; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16, help="worker threads")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="tier changes offered per second (0: one burst)"
    )
    args = parser.parse_args(argv)

    url = os.environ.get("BENCH_WEBHOOKS_DATABASE_URL", DEFAULT_URL)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    var_dir = tempfile.mkdtemp(prefix="bench-webhooks-")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "SWAMPCLUB_VAR_DIR": var_dir,
        "DJANGO_SETTINGS_MODULE": "swampclub.settings",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "1",
        "SCORE_BATCH_SIZE": str(max(args.members, 5000)),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    from bench import pg

    pg.database_recreate(url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.utils import timezone

    from scoring.models import MemberMetrics, MetricsSnapshot, OutboxEvent
    from scoring.scores import scores_process_batch
    from swampclub.celery import app
    from webhooks.models import WebhookDelivery
    from webhooks.services import endpoint_create

    receiver = _Receiver()
    _, receiver.secret = endpoint_create(url=receiver.url, event_types=["tier.changed"])
    users = User.objects.bulk_create(
        # "!" is Django's unusable-password marker: bench members never log in.
        [User(username=f"bench-{n:06d}", password="!") for n in range(args.members)]  # noqa: S106
    )
    now = timezone.now()
    MemberMetrics.objects.bulk_create(
        [MemberMetrics(member=u, award_points=25_000) for u in users], batch_size=5000
    )
    if not args.rate:
        MetricsSnapshot.objects.bulk_create(
            [MetricsSnapshot(member=u, enqueued_at=now) for u in users], batch_size=5000
        )
    with app.connection_for_write() as conn:
        for queue in ("celery", "webhooks"):
            conn.default_channel.queue_purge(queue)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "swampclub",
            "worker",
            "-Q",
            "webhooks",
            "--pool=threads",
            f"--concurrency={args.concurrency}",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
        ],
        cwd=BASE_DIR,
        env=env,
        start_new_session=True,
    )
    try:
        # Wait for the worker before starting the clock: boot time is not delivery time.
        deadline = time.monotonic() + 120
        while not app.control.ping(timeout=1.0):
            if time.monotonic() > deadline:
                raise SystemExit("bench.webhooks: the worker did not start")
        started = time.time()
        if args.rate:
            _offer(users, rate=args.rate, score=scores_process_batch, snapshot=MetricsSnapshot)
        else:
            scores_process_batch()
        committed = time.time()
        events = OutboxEvent.objects.count()
        deadline = time.monotonic() + args.timeout
        while len(receiver.ids) < events and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    received = len(receiver.ids)
    span = (max(receiver.arrivals) - min(receiver.arrivals)) if receiver.arrivals else 0.0
    result = {
        "bench": "webhooks",
        "members": args.members,
        "tier_changes": events,
        "delivered": received,
        "bad_signatures": receiver.bad,
        "offered_per_s": args.rate or None,
        "offered_actual_per_s": (
            round(events / (committed - started), 1) if args.rate and events else None
        ),
        "batch_s": round(committed - started, 3),
        "deliveries_per_s": round(received / span, 1) if span else None,
        "first_arrival_after_commit_s": (
            round(min(receiver.arrivals) - committed, 3)
            if receiver.arrivals and not args.rate
            else None
        ),
        "lag_p50_s": round(_percentile(receiver.lags, 0.50), 3) if receiver.lags else None,
        "lag_p95_s": round(_percentile(receiver.lags, 0.95), 3) if receiver.lags else None,
        "lag_max_s": round(max(receiver.lags), 3) if receiver.lags else None,
        "dead": WebhookDelivery.objects.filter(state="dead").count(),
        "worker_threads": args.concurrency,
        "cpus": os.cpu_count(),
    }
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))
    return 0 if received == events and not receiver.bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
