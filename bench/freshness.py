"""Two pipeline measurements beside throughput: what an idle consumer costs once the queue has
been drained without vacuum, and how long a burst's final state waits to be scored.

``measure_empty_consume`` runs in the harness process (as a worker would) after the consume
stage: autovacuum is switched off on the bench database's events table and the consumer's
queue table, the whole backlog is consumed again, and ``events_consume()`` is timed with
nothing pending — every claim of the backlog left a dead queue row (and its dead index entry)
behind. ``measure_score_lag`` needs the bench's gunicorn and
a real Celery worker (started here, no beat): bursts of ingest requests, then silence, and the
time from the last 202 until nothing is pending any more (events consumed, snapshots scored),
which only the wake-ups' trailing edge can bring about within seconds.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

from django.db import connection
from psycopg import sql

from bench import datagen
from bench.config import BASE_DIR, server_environment
from bench.measure import Bench, median, table
from bench.web import Session, percentile
from scoring.models import MetricsSnapshot, PendingEvent, TelemetryEvent

EMPTY_RUNS = 7
# Bursts per lag measurement, each this long, then silence until scored (or the timeout).
BURSTS = 8
BURST_S = 1.5
LAG_TIMEOUT_S = 60.0


def _empty_runs_ms(events_consume) -> list[float]:
    times = []
    for _ in range(EMPTY_RUNS):
        started = time.perf_counter()
        handled = events_consume()
        times.append((time.perf_counter() - started) * 1000)
        if handled:
            raise RuntimeError(f"an empty consumer run handled {handled} events")
    connection.close()
    return times


def measure_empty_consume(bench: Bench) -> None:
    """``events_consume()`` with nothing pending right after draining the whole backlog with
    autovacuum off on the events and queue tables (bench database only), then after a
    VACUUM.

    ``consume_empty_run_ms`` is the first empty run (the next beat tick's cost; later runs
    find the dead index entries already marked by it), ``consume_empty_run_median_ms`` the
    median of the following ones, ``consume_empty_run_vacuumed_ms`` the median after VACUUM.
    """
    from scoring.consumer import events_consume

    events, queue = table(TelemetryEvent), table(PendingEvent)
    # Storage parameters live on the tables holding rows: the partitions on PostgreSQL's
    # partitioned events table (the parent takes none), else the table itself; and the
    # queue, where the claims' dead rows now are.
    name = TelemetryEvent._meta.db_table
    leaves = [
        row[0]
        for row in bench.run_sql(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND (c.oid = %s::regclass "
            "OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass))",
            (name, name),
        )
    ]
    leaves.append(PendingEvent._meta.db_table)
    for leaf in leaves:
        bench.run_sql(
            sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = off)").format(sql.Identifier(leaf))
        )
    try:
        bench.load_backlog()
        while events_consume():
            pass
        connection.close()
        dead = bench.run_sql(
            "SELECT sum(n_dead_tup) FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            (leaves,),
        )
        bench.results.facts["events_dead_rows_before_empty_run"] = dead[0][0] if dead else None
        times = _empty_runs_ms(events_consume)
    finally:
        for leaf in leaves:
            bench.run_sql(
                sql.SQL("ALTER TABLE {} RESET (autovacuum_enabled)").format(sql.Identifier(leaf))
            )
    bench.run_sql(sql.SQL("VACUUM ANALYZE {}, {}").format(events, queue))
    vacuumed = _empty_runs_ms(events_consume)
    figures = bench.results.figures
    figures["consume_empty_run_ms"] = times[0]
    figures["consume_empty_run_median_ms"] = median(times[1:])
    figures["consume_empty_run_vacuumed_ms"] = median(vacuumed)
    bench.results.runs["consume_empty_run_ms"] = times


def _pending(bench: Bench) -> int:
    """Events still pending plus snapshots not yet scored."""
    return bench.count(PendingEvent) + bench.count(MetricsSnapshot, "processed_at IS NULL")


def _burst(bench: Bench, session: Session, rng: random.Random, seconds: float) -> float:
    """POST batches of 25 events (the CLI's batch) for ``seconds``, rotating the API keys;
    returns the ``time.monotonic()`` of the last 202."""
    last = 0.0
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        body = json.dumps(
            {
                "events": [
                    datagen.cli_event(rng, distinct_id="bench-lag", started_at=now)
                    for _ in range(25)
                ]
            }
        ).encode()
        key = bench.ingest_keys[n % len(bench.ingest_keys)]
        answer = session.request(
            "POST", "/ingest", body, {"Content-Type": "application/json", "x-api-key": key}
        )
        if answer.status != 202:
            raise RuntimeError(f"POST /ingest answered {answer.status}: {answer.body[:200]!r}")
        last = time.monotonic()
        n += 1
    return last


def _worker(bench: Bench) -> subprocess.Popen:
    """A Celery worker on the default queue with the bench's environment (no beat)."""
    env = {**os.environ, **server_environment(bench.config)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "swampclub",
            "worker",
            "-Q",
            "celery",
            "--pool=threads",
            "--concurrency=2",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
        ],
        cwd=BASE_DIR,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=(bench.config.out_dir / "worker.log").open("wb"),
    )


def _wait_for(worker: subprocess.Popen, app) -> None:
    """Until the worker runs tasks: a heartbeat task it records (any broker, no control
    channel needed)."""
    from scoring.models import PipelineRun
    from scoring.pipeline import RunKind

    def beat() -> object:
        row = PipelineRun.objects.filter(kind=RunKind.WORKER).values_list("runs", flat=True)
        return row.first()

    before = beat()
    app.send_task("scoring.heartbeat")
    deadline = time.monotonic() + 120
    while beat() == before:
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the Celery worker did not start (bench/out/worker.log)")
        time.sleep(0.1)
    connection.close()


def _purge(app) -> None:
    try:
        app.control.purge()
    except Exception as exc:  # only stale wake-ups: the measurement drains PostgreSQL itself
        print(f"  (could not purge the broker queue: {exc})")


def measure_score_lag(bench: Bench) -> None:
    """p95 over bursts of the time from a burst's last 202 to its final state being scored.

    Whatever is pending from earlier stages is drained first (in this process) and the wake-ups
    they queued are purged, so the worker only sees the bursts; no beat runs, so only the
    wake-ups (leading and trailing edge) bring the work to the worker.
    """
    if not bench.ingest_keys:
        from bench.measure import NotAvailable

        raise NotAvailable("no API keys (scoring.apikeys.api_key_create is missing)")
    from scoring.consumer import events_consume
    from scoring.scores import scores_process_batch
    from swampclub.celery import app

    while events_consume():
        pass
    scores_process_batch()
    connection.close()
    _purge(app)
    worker = _worker(bench)
    lags: list[float] = []
    try:
        _wait_for(worker, app)
        session = Session("127.0.0.1", bench.port)
        rng = random.Random(bench.config.seed + 3)
        for _ in range(BURSTS):
            last_202 = _burst(bench, session, rng, BURST_S)
            give_up = last_202 + LAG_TIMEOUT_S
            while _pending(bench) and time.monotonic() < give_up:
                time.sleep(0.05)
            if _pending(bench):
                bench.results.notes["lag"] = f"not scored within {LAG_TIMEOUT_S:.0f} s of a burst"
                break
            lags.append(time.monotonic() - last_202)
            time.sleep(1.5)  # silence: the next burst starts a fresh debounce interval
        session.close()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
        _purge(app)
    bench.results.runs["score_lag_s"] = lags
    bench.results.figures["score_lag_p95_s"] = percentile(lags, 95)
    bench.results.figures["score_lag_p50_s"] = percentile(lags, 50)
