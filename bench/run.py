"""``python -m bench`` (``make bench``): build the bench database, measure, report.

Order: recreate and migrate the bench database; generate members and the event file; COPY
ceiling; consume (several cold drains of the whole backlog, then one more with autovacuum
off, followed by empty consumer runs); awards; score batch; score history; then gunicorn
serves the app for ingest, pages, the deep leaderboard page, the grant form and, with a Celery
worker and no beat, the score lag after bursts of ingest. The table is printed, then the JSON
object as the last line. The bench database is left in place for inspection and for
``python -m bench.profile``.
"""

import argparse
import dataclasses
import os
import platform
import sys
import time
from datetime import UTC, datetime

from bench import pg
from bench.config import (
    DEFAULT_PG_SERVER,
    SIZES,
    Config,
    bench_database_url,
    bench_redis_url,
    database_name,
    server_environment,
)

STAGES = (
    "copy",
    "consume",
    "score",
    "rescore",
    "ingest",
    "pages",
    "deep",
    "grant",
    "lag",
    "stored",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (each also settable from the environment)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default=os.environ.get("BENCH_SIZE", "full"),
        help="data set size (env BENCH_SIZE; default full: 1M events, 100k members)",
    )
    parser.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", ""),
        help=f"comma-separated stages to measure (default all: {','.join(STAGES)})",
    )
    parser.add_argument(
        "--chart",
        default=os.environ.get("BENCH_CHART", ""),
        help="also write the throughput chart here (e.g. docs/bench-throughput.svg)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=int(os.environ.get("BENCH_CLIENTS", "4")),
        help="load generator processes for ingest (default 4: two per gunicorn worker)",
    )
    return parser.parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[Config, object]:
    """The run's configuration; starts a throwaway PostgreSQL when nothing else is there."""
    stop_cluster = None
    url = bench_database_url()
    defaulted = not os.environ.get("BENCH_DATABASE_URL") and not os.environ.get("DATABASE_URL")
    if not pg.server_reachable(url):
        if not defaulted or not url.startswith(DEFAULT_PG_SERVER):
            raise SystemExit(f"bench: cannot connect to the PostgreSQL server of {url}")
        print("bench: no PostgreSQL on 127.0.0.1:5432; starting a throwaway cluster", flush=True)
        url, stop_cluster = pg.throwaway_cluster(database_name(url))
    only = frozenset(s.strip() for s in args.only.split(",") if s.strip())
    unknown = only - set(STAGES)
    if unknown:
        raise SystemExit(f"bench: unknown stage(s) {sorted(unknown)}; choose from {STAGES}")
    size = SIZES[args.size]
    if os.environ.get("BENCH_HISTORY_EVENTS"):
        size = dataclasses.replace(size, stored_events=int(os.environ["BENCH_HISTORY_EVENTS"]))
    config = Config(
        size=size,
        bench_db_url=url,
        redis_url=bench_redis_url(),
        ingest_clients=args.clients,
        only=only,
    )
    return config, stop_cluster


def main(argv: list[str] | None = None) -> int:
    """Run the whole benchmark; print the table and, last, the JSON line."""
    args = parse_args(argv)
    config, stop_cluster = resolve(args)
    try:
        return _run(config, args)
    finally:
        if stop_cluster:
            stop_cluster()


def _run(config: Config, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    measured_at = datetime.now(UTC)
    # Other work on the machine slows every figure; the load average says how busy it was.
    load_at_start = round(os.getloadavg()[0], 2)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    config.var_dir.mkdir(parents=True, exist_ok=True)
    db = database_name(config.bench_db_url)
    print(
        f"bench: size={config.size.name} database={db} redis={config.redis_url or '(none)'} "
        f"cores={os.cpu_count()} load={load_at_start} python={platform.python_version()}",
        flush=True,
    )
    pg.database_recreate(config.bench_db_url)
    os.environ.update(server_environment(config))

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    server_info = pg.server_settings(config.bench_db_url)
    print(f"  migrated; postgres {server_info}", flush=True)

    from bench import freshness, report
    from bench.measure import Bench
    from bench.server import Gunicorn

    bench = Bench(config)
    results = bench.results
    print("data set:", flush=True)
    bench.generate()
    results.stage("api keys", (), bench.create_ingest_keys)

    print("measures:", flush=True)
    if config.wants("copy"):
        results.stage("copy", ("copy_rows_per_s",), bench.measure_copy)
    if config.wants("consume"):
        results.stage("consume", ("consume_events_per_s",), bench.measure_consume)
        results.stage(
            "consume_empty",
            ("consume_empty_run_ms",),
            lambda: freshness.measure_empty_consume(bench),
        )
    else:
        bench.load_backlog()
    results.stage("awards", (), bench.load_awards)
    if config.wants("score"):
        results.stage("score", ("score_members_per_s",), bench.measure_score)
    if config.wants("rescore"):
        results.stage(
            "rescore",
            ("rescore_dry_run_members_per_s", "rescore_apply_members_per_s"),
            bench.measure_rescore,
        )
    results.stage("history", (), bench.load_history)
    bench.run_sql("VACUUM ANALYZE")

    def served() -> None:
        log_path = config.out_dir / "gunicorn.log"
        env = server_environment(config)
        with Gunicorn(env=env, workers=config.gunicorn_workers, log_path=log_path) as server:
            bench.port = server.port
            print(f"  gunicorn: 127.0.0.1:{server.port}, {config.gunicorn_workers} workers")
            if config.wants("ingest"):
                results.stage(
                    "ingest", ("ingest_events_per_s", "ingest_p95_ms"), bench.measure_ingest
                )
            if config.wants("pages"):
                results.stage("pages", ("page_p95_ms",), bench.measure_pages)
            if config.wants("deep"):
                results.stage("deep", ("leaderboard_deep_p95_ms",), bench.measure_deep_board)
            if config.wants("grant"):
                results.stage("grant", ("grant_p95_ms",), bench.measure_grant)
            if config.wants("lag"):
                results.stage(
                    "lag", ("score_lag_p95_s",), lambda: freshness.measure_score_lag(bench)
                )

    results.stage("server", (), served)

    def stored() -> None:
        # The same ingest and consume once the table holds the history as well.
        bench.load_stored_history()
        bench.measure_consume(prefix="history_")
        env = server_environment(config)
        log_path = config.out_dir / "gunicorn-history.log"
        with Gunicorn(env=env, workers=config.gunicorn_workers, log_path=log_path) as server:
            bench.port = server.port
            bench.measure_ingest(batches=(100,), prefix="history_")
        bench.history_ratios()

    if config.size.stored_events and config.wants("stored"):
        results.stage(
            "stored", ("history_consume_events_per_s", "history_ingest_events_per_s"), stored
        )
    _purge_wakeups(config)

    figures = results.figures
    ingest = figures.get("ingest_events_per_s")
    copy_into = figures.get("copy_into_events_rows_per_s")
    if ingest and copy_into:
        # Ingest (batches of 100) against COPY into the events table, both of this run.
        figures["ingest_to_copy_ratio"] = ingest / copy_into
    extra = {
        "bench_size": config.size.name,
        "measured_at": measured_at.isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_avg_start": load_at_start,
        "load_avg_end": round(os.getloadavg()[0], 2),
        "members": results.facts.get("members"),
        "events": results.facts.get("events"),
        "awards": results.facts.get("awards"),
        "ingest_clients": config.ingest_clients,
        "duration_s": round(time.perf_counter() - started),
    }
    payload = report.json_figures(figures, extra)
    (config.out_dir / "results.json").write_text(
        report.json_line({**payload, "notes": results.notes, "runs": results.runs}) + "\n"
    )
    (config.out_dir / "results.md").write_text(report.markdown_table(figures) + "\n")
    if results.ingest_by_batch:
        svg = report.throughput_svg(
            results.ingest_by_batch,
            goal=report.GOALS["ingest_events_per_s"][1],
            ceiling=figures.get("copy_rows_per_s"),
            subtitle=(
                f"{config.size.name} data set, {os.cpu_count()} cores, "
                f"{config.ingest_clients} client processes, load average {load_at_start} "
                f"at start, {measured_at:%Y-%m-%d %H:%M} UTC"
            ),
        )
        (config.out_dir / "bench-throughput.svg").write_text(svg)
        if args.chart:
            with open(args.chart, "w") as chart:
                chart.write(svg)
    print()
    print(report.table_text(figures, results.notes))
    print(f"\n(details in {config.out_dir}; bench database {db} kept for inspection)")
    sys.stdout.flush()
    print(report.json_line(payload))
    return 0


def _purge_wakeups(config: Config) -> None:
    """Drop the consumer wake-up messages the bench's ingest and grants queued.

    No worker ran during the bench, so every ingest request left a wake-up in the broker.
    They only say "look at PostgreSQL" (which holds all pending work), so dropping them loses
    nothing, and a real worker sharing the broker is spared thousands of no-op runs.
    """
    if not config.redis_url:
        return
    try:
        from swampclub.celery import app

        app.control.purge()
    except Exception as exc:  # the figures are already measured
        print(f"  (could not purge the broker queue: {exc})")
