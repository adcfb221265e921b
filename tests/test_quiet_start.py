"""Starting the embedded setup prints nothing that reads like an error."""

import os
import subprocess
import sys

from django.conf import settings


def test_worker_start_on_the_filesystem_broker_logs_no_hostname_warning(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["SWAMPCLUB_VAR_DIR"] = str(tmp_path)
    # What a worker and every publisher do first: open a broker connection.
    code = (
        "import logging, django; logging.basicConfig(level=logging.WARNING); django.setup()\n"
        "from swampclub.celery import app\n"
        "with app.connection_for_write() as conn:\n"
        "    conn.ensure_connection(max_retries=1); print(conn.as_uri())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "swampclub.settings"},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("filesystem://")
    assert "hostname" not in result.stderr.lower(), result.stderr
