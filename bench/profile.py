"""Profile one hot path against the bench database a previous ``python -m bench`` left.

    python -m bench.profile consume            # events_consume over the whole backlog
    python -m bench.profile score              # scores_process_batch over every member
    python -m bench.profile ingest [--batch N] # POST /ingest in-process (Django test client)
    python -m bench.profile page /u/<member>/  # any GET, as the bench's staff user
    python -m bench.profile grant              # POST /staff/awards/new

Runs in this process under pyinstrument (no gunicorn: the profile then shows only the app's
own code) and prints the call tree; ``--html`` also writes bench/out/profile-<what>.html.
"""

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime

from bench.config import SIZES, Config, bench_database_url, bench_redis_url, server_environment


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, profile the chosen path, print the report."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("what", choices=["consume", "score", "ingest", "page", "grant"])
    parser.add_argument("path", nargs="?", default="/leaderboard/")
    parser.add_argument("--batch", type=int, default=100, help="events per ingest request")
    parser.add_argument("--requests", type=int, default=200, help="requests to profile")
    parser.add_argument("--html", action="store_true", help="also write an HTML report")
    args = parser.parse_args(argv)

    config = Config(
        size=SIZES[os.environ.get("BENCH_SIZE", "quick")],
        bench_db_url=bench_database_url(),
        redis_url=bench_redis_url(),
    )
    os.environ.update(server_environment(config))
    import django

    django.setup()
    from pyinstrument import Profiler

    from bench.measure import Bench

    bench = Bench(config)
    bench.events_path = config.out_dir / "events.copy"
    target = _prepare(args, bench)
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    target()
    profiler.stop()
    took = time.perf_counter() - started
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    print(f"{args.what}: {took:.2f} s under the profiler")
    if args.html:
        out = config.out_dir / f"profile-{args.what}.html"
        out.write_text(profiler.output_html())
        print(f"written {out}")
    return 0


def _prepare(args: argparse.Namespace, bench):
    """Set the stage for ``args.what`` and return the callable to profile."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from bench import datagen
    from bench.measure import STAFF_USERNAME, optional

    if args.what == "consume":
        events_consume = optional("scoring.consumer", "events_consume")
        bench.results.facts["events"] = sum(1 for _ in bench.events_path.open("rb"))
        bench.load_backlog()
        return lambda: [None for _ in iter(events_consume, 0)]
    if args.what == "score":
        scores_process_batch = optional("scoring.scores", "scores_process_batch")
        bench.enqueue_snapshots()
        return scores_process_batch
    client = Client()
    staff = get_user_model().objects.get(username=STAFF_USERNAME)
    if args.what == "ingest":
        api_key_create = optional("scoring.apikeys", "api_key_create")
        owner = get_user_model().objects.filter(is_staff=False).order_by("id").first()
        key = api_key_create(owner=owner, scopes=["ingest"], name="profile")[1]
        rng = random.Random(7)
        bodies = [
            json.dumps(
                {
                    "events": [
                        datagen.cli_event(rng, distinct_id="profile", started_at=datetime.now(UTC))
                        for _ in range(args.batch)
                    ]
                }
            )
            for _ in range(args.requests)
        ]

        def post_all() -> None:
            for body in bodies:
                response = client.post(
                    "/ingest", body, content_type="application/json", headers={"x-api-key": key}
                )
                assert response.status_code == 202, response.content[:300]  # noqa: S101

        return post_all
    client.force_login(staff)
    if args.what == "page":

        def get_all() -> None:
            for _ in range(args.requests):
                response = client.get(args.path)
                assert response.status_code == 200, response.status_code  # noqa: S101

        return get_all
    members = list(
        get_user_model().objects.filter(is_staff=False).values_list("username", flat=True)[:500]
    )
    rng = random.Random(8)

    def grant_all() -> None:
        for _ in range(args.requests):
            response = client.post(
                "/staff/awards/new",
                {
                    "username": rng.choice(members),
                    "points": "50",
                    "reason": "Profiled grant for a helpful answer",
                    "category": "community",
                    "public": "on",
                    "staff_note": "",
                    "idempotency_key": datagen.fake_uuid(rng),
                },
            )
            assert response.status_code == 302, response.status_code  # noqa: S101

    return grant_all


if __name__ == "__main__":
    sys.exit(main())
