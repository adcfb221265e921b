"""The app under test: gunicorn serving ``swampclub.wsgi`` on a free local port."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.config import BASE_DIR, PORT_RANGE
from bench.web import Session


def free_port(ports: range = PORT_RANGE) -> int:
    """The first port of ``ports`` nobody listens on."""
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"bench: no free port in {ports.start}-{ports.stop - 1}")


class Gunicorn:
    """gunicorn with ``workers`` sync workers (as the Procfile runs it), started and stopped."""

    def __init__(self, *, env: dict[str, str], workers: int, log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.workers = workers
        self.log_path = log_path
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Gunicorn":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Start gunicorn and wait until it answers the login page."""
        self.port = free_port()
        cmd = [
            sys.executable, "-m", "gunicorn", "swampclub.wsgi",
            "--workers", str(self.workers),
            "--bind", f"127.0.0.1:{self.port}",
            "--timeout", "300",
            "--log-level", "warning",
            "--error-logfile", str(self.log_path),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, cwd=BASE_DIR, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}); see {self.log_path}")
            try:
                # Any answer means it is serving; a broken page shows up in its own stage.
                Session("127.0.0.1", self.port, timeout=5).get("/accounts/login/")
                # Let every worker finish importing the app before measuring.
                self._warm()
                return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer on port {self.port}; see {self.log_path}")

    def _warm(self) -> None:
        session = Session("127.0.0.1", self.port)
        for _ in range(4 * self.workers):
            session.get("/accounts/login/")
        session.close()

    def stop(self) -> None:
        """Stop gunicorn (graceful, then forced)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
