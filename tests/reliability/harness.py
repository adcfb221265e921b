"""Real processes for fault tests: Celery workers and beat, a private Redis, a TCP cut-off.

Everything here starts real operating-system processes or sockets and cleans them up; the
tests poll for outcomes with deadlines (``wait_until``) and never assert on elapsed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import Request, urlopen

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
VENV_BIN = ROOT / ".venv" / "bin"
# Ports reserved for these tests: a private Redis (never the shared one on 6379) and the
# TCP cut-off in front of PostgreSQL.
REDIS_PORT = 6390
PROXY_PORT = 8171


def wait_until(predicate: Callable[[], object], *, timeout: float, message: str) -> object:
    """Poll ``predicate`` until it returns a truthy value; fail with ``message`` on timeout.

    The deadline only bounds how long a broken system is waited for; no assertion depends
    on how quickly the condition became true.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {message}")
        time.sleep(0.05)


def http_post_json(
    url: str, body: object, *, headers: dict[str, str], timeout: float = 30
) -> tuple[int, dict[str, str], object]:
    """POST ``body`` as JSON; return (status, headers, decoded JSON body or None)."""
    data = json.dumps(body).encode()
    request = Request(  # noqa: S310 - the URL is always a loopback test server
        url, data=data, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw, response_headers = response.status, response.read(), response.headers
    except HTTPError as error:
        status, raw, response_headers = error.code, error.read(), error.headers
        error.close()
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = None
    return status, dict(response_headers), decoded


def database_url() -> str:
    """A DATABASE_URL for the database this test process is using (the test database)."""
    sd = connection.settings_dict
    user = quote(sd.get("USER") or "")
    password = sd.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else f"{user}@" if user else ""
    host = sd.get("HOST") or "127.0.0.1"
    port = sd.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{sd['NAME']}"


def needs_real_services() -> tuple[bool, str]:
    """Whether fault tests can run here, and why not (for ``skipif``)."""
    if connection.vendor != "postgresql":
        return False, "needs PostgreSQL (SKIP LOCKED, real concurrent workers)"
    if shutil.which("redis-server") is None:
        return False, "needs the redis-server binary for a private broker"
    return True, ""


def process_env(*, redis_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess that must use this test's database and broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "FAULT_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="swampclub.settings",
        DATABASE_URL=database_url(),
        REDIS_URL=redis_url,
        SWAMPCLUB_VAR_DIR=str(var_dir),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        # As in the suite (tests/conftest.py ``governance_limits``): these tests grant big
        # awards in bulk and test faults, not approval or budgets.
        AWARD_APPROVAL_THRESHOLD=str(10**9),
        AWARD_GRANTER_BUDGET=str(10**12),
    )
    env.update(extra)
    return env


class ManagedProcess:
    """A subprocess in its own process group, with its output in a log file."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """The process id of the main process."""
        return self.proc.pid

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """True while the main process has not exited."""
        return self.proc.poll() is None

    def wait_for_log(self, text: str, *, timeout: float = 60) -> None:
        """Wait until ``text`` appears in the output (fails early if the process died)."""

        def seen() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited early:\n{self.log()[-4000:]}")
            return text in self.log()

        wait_until(seen, timeout=timeout, message=f"{text!r} in {self.name}'s output")

    def children(self) -> list[int]:
        """Process ids of the direct children (e.g. a prefork worker's pool processes)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except FileNotFoundError:
            return []

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no acknowledgement, no rollback."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Ask the process group to stop (SIGTERM), then SIGKILL whatever is left."""
        if self.alive():
            os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        # Pool children may outlive a parent that exited; never leave them running.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


class Processes:
    """Starts Celery workers and beat for one test and stops all of them afterwards."""

    def __init__(self, *, redis_url: str, tmp_path: Path):
        self.redis_url = redis_url
        self.tmp_path = tmp_path
        self.started: list[ManagedProcess] = []
        self._count = 0

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a subprocess of this test (test database, private broker)."""
        return process_env(redis_url=self.redis_url, var_dir=self.tmp_path, **extra)

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}-{self._count}"

    def worker(
        self,
        *,
        app: str = "swampclub",
        pool: str = "solo",
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> ManagedProcess:
        """Start ``celery worker`` and (by default) wait until it is ready for tasks."""
        name = self._name("worker")
        args = [
            str(VENV_BIN / "celery"),
            "-A",
            app,
            "worker",
            "--loglevel=INFO",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            f"--hostname={name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        proc = ManagedProcess(name, args, env=self.env(**(env or {})), log_dir=self.tmp_path)
        self.started.append(proc)
        if wait:
            proc.wait_for_log(" ready.")
        return proc

    def beat(self, *, env: dict[str, str] | None = None, wait: bool = True) -> ManagedProcess:
        """Start ``celery beat`` with its own schedule file and (by default) wait until it
        runs."""
        name = self._name("beat")
        args = [
            str(VENV_BIN / "celery"),
            "-A",
            "swampclub",
            "beat",
            "--loglevel=INFO",
            f"--schedule={self.tmp_path / name}-schedule",
        ]
        proc = ManagedProcess(name, args, env=self.env(**(env or {})), log_dir=self.tmp_path)
        self.started.append(proc)
        if wait:
            proc.wait_for_log("beat: Starting")
        return proc

    def web(self, *, port: int, env: dict[str, str] | None = None) -> ManagedProcess:
        """Start the WSGI app under gunicorn (one sync worker) and wait until it answers."""
        name = self._name("web")
        args = [
            str(VENV_BIN / "gunicorn"),
            "swampclub.wsgi",
            f"--bind=127.0.0.1:{port}",
            "--workers=1",
            "--timeout=60",
        ]
        proc = ManagedProcess(name, args, env=self.env(**(env or {})), log_dir=self.tmp_path)
        self.started.append(proc)

        def listening() -> bool:
            if not proc.alive():
                raise AssertionError(f"{name} exited early:\n{proc.log()[-4000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
            return True

        wait_until(listening, timeout=60, message=f"gunicorn on port {port}")
        return proc

    def stop_all(self) -> None:
        """Stop every process this test started."""
        for proc in self.started:
            proc.stop()


class Fault:
    """The switches of ``tests.reliability.fault_app`` for one test, and what it reports."""

    def __init__(self, *, tmp_path: Path, task: str, pause_after_sql: str):
        self.task = task
        self.pause_after_sql = pause_after_sql
        self.marker = tmp_path / "fault-paused"
        self.release_file = tmp_path / "fault-release"
        self.runs_file = tmp_path / "fault-runs"

    def env(self) -> dict[str, str]:
        """Environment variables that arm the fault in a worker."""
        return {
            "FAULT_TASK": self.task,
            "FAULT_PAUSE_SQL": self.pause_after_sql,
            "FAULT_MARKER": str(self.marker),
            "FAULT_RELEASE": str(self.release_file),
            "FAULT_RUNS": str(self.runs_file),
        }

    def wait_paused(self, worker: ManagedProcess, *, timeout: float = 60) -> tuple[int, str]:
        """Wait until a worker process paused mid-transaction; return (pid, state)."""

        def paused() -> str | None:
            if not worker.alive():
                raise AssertionError(f"{worker.name} exited early:\n{worker.log()[-4000:]}")
            text = self.marker.read_text() if self.marker.exists() else ""
            return text if text.endswith("\n") else None

        pid, state = str(wait_until(paused, timeout=timeout, message="the fault pause")).split()
        return int(pid), state

    def release(self) -> None:
        """Let tasks waiting after the kill go on."""
        self.release_file.touch()

    def runs(self) -> list[tuple[int, str, str]]:
        """Every task start seen by faulted workers: (pid, task id, task name)."""
        if not self.runs_file.exists():
            return []
        rows = [line.split() for line in self.runs_file.read_text().splitlines()]
        return [(int(pid), task_id, name) for pid, task_id, name in rows]


class RedisServer:
    """A private ``redis-server`` on ``REDIS_PORT`` that a test may stop and start at will."""

    def __init__(self, *, tmp_path: Path, port: int = REDIS_PORT):
        self.port = port
        self.dir = tmp_path / f"redis-{port}"
        self.dir.mkdir(exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        """The connection URL of database ``db`` on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def ping(self) -> bool:
        """True when the server answers PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        """Start the server (no persistence) and wait until it answers."""
        if self.ping():
            raise AssertionError(f"something already listens on port {self.port}")
        with (self.dir / "redis.log").open("ab") as log:
            self.proc = self._spawn(log)
        wait_until(self.ping, timeout=20, message=f"redis-server on port {self.port}")

    def _spawn(self, log) -> subprocess.Popen:
        return subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        """Kill the server: queued messages are lost, as in a crash without persistence."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self.proc = None
        wait_until(lambda: not self.ping(), timeout=20, message="redis-server to be gone")


class TcpCutoff:
    """A TCP forwarder in front of a server that a test can cut, like a pulled cable.

    ``refuse()`` closes every open connection and refuses new ones (a database that went
    away); ``cut_on(marker)`` forwards normally until a client sends bytes containing
    bytes matching the regular expression ``marker`` (e.g. an ``INSERT`` into a given table,
    or ``COMMIT``), then drops that connection before the server sees them — the failure
    lands in the middle of a request's transaction.
    """

    def __init__(self, *, target: tuple[str, int], port: int = PROXY_PORT):
        self.target = target
        self.port = port
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._marker: re.Pattern[bytes] | None = None
        self._after_sending = False
        self.cuts = 0
        self._thread: threading.Thread | None = None

    def accept(self) -> None:
        """Start (or resume) forwarding connections to the target."""
        with self._lock:
            self._marker = None
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(16)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self._thread.start()

    def cut_on(self, marker: bytes, *, after_sending: bool = False) -> None:
        """Drop the first client connection that sends bytes matching the regular expression
        ``marker`` (then keep forwarding everything else): before the server sees those
        bytes, or with ``after_sending`` right after handing them to the server, so the
        statement runs but its answer never reaches the client."""
        with self._lock:
            self._marker = re.compile(marker)
            self._after_sending = after_sending

    def refuse(self) -> None:
        """Close all connections and the listening socket: new connections are refused."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            _close(listener)
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _close(conn)

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed by refuse()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        # After an ``after_sending`` hit: the client's bytes still flow, the server's answers
        # are dropped until it reports ReadyForQuery (statement done and committed).
        swallowing = False
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if swallowing and sock is upstream:
                        if READY_FOR_QUERY in data:
                            return
                        continue
                    with self._lock:
                        marker = self._marker
                        hit = sock is client and marker is not None and bool(marker.search(data))
                        if hit:
                            self._marker = None
                            self.cuts += 1
                            swallowing = self._after_sending
                    if hit and not swallowing:
                        return  # the statement never reaches the server
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            _close(client)
            _close(upstream)


# PostgreSQL's ReadyForQuery message ("Z", length 5): the server finished the request.
READY_FOR_QUERY = b"Z\x00\x00\x00\x05"


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
