"""Benchmark configuration: data sizes, repetitions and where the bench database lives.

Nothing here imports Django: the environment (``DATABASE_URL`` pointing at the bench
database, ``REDIS_URL``, ``SWAMPCLUB_VAR_DIR``) must be set before settings are read.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = BASE_DIR / "bench" / "out"

DEFAULT_PG_SERVER = "postgres://postgres@127.0.0.1:5432"
DEFAULT_BENCH_DB = "swampclub_bench"
PORT_RANGE = range(8160, 8170)

# Ingest batch sizes measured for the throughput chart; 100 is the headline figure and 25 is
# the swamp CLI's own batch size.
INGEST_BATCH_SIZES = (1, 25, 100, 500, 1000)


@dataclass(frozen=True)
class Size:
    """How much data to generate and how long/often to measure."""

    name: str
    members: int
    events: int
    awards: int
    # Days of history the events spread over (ending today, UTC).
    days: int
    # Repetitions per measurement; the reported figure is the median.
    runs: int
    # Seconds of closed-loop load per ingest run, after a short warm-up.
    ingest_seconds: float
    # Requests per page for the latency percentiles (after warm-up).
    page_requests: int
    grant_requests: int
    # Past ScoreHistory rows per member, on average (profile charts, leaderboard windows).
    history_per_member: int
    # A measurement stops repeating once its runs used this many seconds.
    stage_budget_s: float
    # Processed past events stored before ingest and consume are measured again ("stored"
    # stage): the history a live system accumulates, spread over ``stored_months`` months
    # before the backlog's days. 0: the stage is skipped. ``BENCH_HISTORY_EVENTS`` overrides.
    stored_events: int = 0
    stored_months: int = 10


SIZES = {
    "quick": Size(
        name="quick",
        members=10_000,
        events=100_000,
        awards=10_000,
        days=90,
        runs=3,
        ingest_seconds=3.0,
        page_requests=60,
        grant_requests=40,
        history_per_member=4,
        stage_budget_s=60.0,
    ),
    "full": Size(
        name="full",
        members=100_000,
        events=1_000_000,
        awards=100_000,
        days=120,
        runs=3,
        ingest_seconds=6.0,
        page_requests=150,
        grant_requests=80,
        history_per_member=5,
        stage_budget_s=240.0,
    ),
    # "Cost that does not grow with history": the full size, then 9M processed events more
    # (10M stored) spread over the 10 months before the backlog's 120 days, and ingest and
    # consume measured again; goal >= 0.9 x the figures at 1M stored events of the same run.
    "history": Size(
        name="history",
        members=100_000,
        events=1_000_000,
        awards=100_000,
        days=120,
        runs=3,
        ingest_seconds=6.0,
        page_requests=150,
        grant_requests=80,
        history_per_member=5,
        stage_budget_s=240.0,
        stored_events=9_000_000,
    ),
    # A few hundred rows: used by the smoke test and for trying the harness out.
    "tiny": Size(
        name="tiny",
        members=50,
        events=500,
        awards=40,
        days=30,
        runs=1,
        ingest_seconds=0.5,
        page_requests=5,
        grant_requests=3,
        history_per_member=2,
        stage_budget_s=10.0,
    ),
}


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def database_name(url: str) -> str:
    """The database name in a PostgreSQL URL."""
    return urlsplit(url).path.lstrip("/")


def is_postgres(url: str) -> bool:
    """True for a ``postgres://``/``postgresql://`` URL."""
    return urlsplit(url).scheme in {"postgres", "postgresql", "pgsql"}


@dataclass
class Config:
    """Everything one benchmark run needs to know, resolved from the environment."""

    size: Size
    bench_db_url: str
    redis_url: str
    out_dir: Path = OUT_DIR
    seed: int = 20261124
    ingest_clients: int = 4
    gunicorn_workers: int = 2
    only: frozenset[str] = field(default_factory=frozenset)

    @property
    def var_dir(self) -> Path:
        """SWAMPCLUB_VAR_DIR of the bench process and the bench server."""
        return self.out_dir / "var"

    def wants(self, stage: str) -> bool:
        """True when ``stage`` is measured in this run (every stage unless --only was given)."""
        return not self.only or stage in self.only


def bench_database_url(environ: dict[str, str] | None = None) -> str:
    """The bench database URL: never the app's own database.

    ``BENCH_DATABASE_URL`` wins; otherwise the server of ``DATABASE_URL`` (when it is
    PostgreSQL) or ``postgres://postgres@127.0.0.1:5432`` with the database
    ``swampclub_bench``. The database is dropped and recreated by every run, so its name must
    contain "bench" and differ from the app's database name.
    """
    env = os.environ if environ is None else environ
    app_url = env.get("DATABASE_URL", "")
    explicit = env.get("BENCH_DATABASE_URL", "")
    if explicit:
        url = explicit
    elif app_url and is_postgres(app_url):
        url = _with_database(app_url, DEFAULT_BENCH_DB)
    else:
        url = f"{DEFAULT_PG_SERVER}/{DEFAULT_BENCH_DB}"
    if not is_postgres(url):
        raise SystemExit(f"bench: the bench database must be PostgreSQL, got {url!r}")
    name = database_name(url)
    if "bench" not in name:
        raise SystemExit(
            f"bench: refusing to drop database {name!r}: its name must contain 'bench'"
        )
    if app_url and is_postgres(app_url) and database_name(app_url) == name:
        raise SystemExit(f"bench: {name!r} is the app's DATABASE_URL; use another name")
    return url


def bench_redis_url(environ: dict[str, str] | None = None) -> str:
    """``BENCH_REDIS_URL``, else ``REDIS_URL``, else empty (Celery's filesystem broker)."""
    env = os.environ if environ is None else environ
    return env.get("BENCH_REDIS_URL") or env.get("REDIS_URL", "")


def server_environment(config: Config) -> dict[str, str]:
    """The environment of the bench process and of the gunicorn it starts."""
    env = {
        "DATABASE_URL": config.bench_db_url,
        "REDIS_URL": config.redis_url,
        "SWAMPCLUB_VAR_DIR": str(config.var_dir),
        "DJANGO_SETTINGS_MODULE": "swampclub.settings",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        # The per-key limit protects production from one runaway CLI; the load generator
        # is exactly such a client, so the bench server lifts it.
        "INGEST_RATE_LIMIT": str(10**9),
        # The generated ledger credits its few granters with far more than a 30-day grant
        # budget; the grant measurement still runs the budget check, against a lifted limit.
        "AWARD_GRANTER_BUDGET": str(10**12),
        # Beat is not running; nothing should wait on it.
        "PYTHONHASHSEED": "0",
    }
    return env
