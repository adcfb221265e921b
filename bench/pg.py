"""The bench database: reachability, drop/recreate, and a throwaway cluster as a fallback."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from bench.config import database_name


def _maintenance_url(url: str) -> str:
    from bench.config import _with_database

    return _with_database(url, "postgres")


def server_reachable(url: str) -> bool:
    """True when the PostgreSQL server of ``url`` accepts a connection."""
    try:
        with psycopg.connect(_maintenance_url(url), connect_timeout=3, autocommit=True):
            return True
    except psycopg.OperationalError:
        return False


def database_recreate(url: str) -> None:
    """Drop (terminating its sessions) and create the bench database of ``url``."""
    name = database_name(url)
    with psycopg.connect(_maintenance_url(url), autocommit=True) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(ident))


def server_settings(url: str) -> dict[str, str]:
    """A few server settings worth printing next to the figures."""
    names = ("server_version", "shared_buffers", "synchronous_commit", "fsync", "max_wal_size")
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            n: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(n))).fetchone()[0]
            for n in names
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def throwaway_cluster(db_name: str) -> tuple[str, Callable[[], None]]:
    """Start a private PostgreSQL cluster in a temporary directory; return (url, stop).

    Used only when no server answers at the default address and no URL was given. The
    cluster trusts local connections, listens on 127.0.0.1 on a free port, and is deleted by
    ``stop``. PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user.
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise SystemExit(
            "bench: no PostgreSQL reachable and no initdb/pg_ctl to start one; "
            "set BENCH_DATABASE_URL or DATABASE_URL"
        )
    datadir = Path(tempfile.mkdtemp(prefix="swampclub-bench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise SystemExit("bench: running as root and there is no 'postgres' user") from None
        os.chown(datadir, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [
            *prefix,
            initdb,
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {datadir} -c fsync=on"
    subprocess.run(
        [
            *prefix,
            pg_ctl,
            "-D",
            str(datadir),
            "-o",
            options,
            "-l",
            str(datadir / "server.log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )

    def stop() -> None:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(datadir), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(datadir, ignore_errors=True)

    return f"postgres://postgres@127.0.0.1:{port}/{db_name}", stop
