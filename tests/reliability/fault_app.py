"""A Celery app for fault tests: the project's app plus a pause inside one task's transaction.

A worker started with ``-A tests.reliability.fault_app`` behaves exactly like
``-A swampclub`` except that, while the task named in ``FAULT_TASK`` runs, the first SQL
statement matching ``FAULT_PAUSE_SQL`` (a regular expression) that executes inside an open
transaction is followed by a pause: the worker writes ``FAULT_MARKER`` and sleeps, holding
the transaction open, until the test kills it. The marker is created exclusively, so only
the first process to get there pauses; a redelivery in a fresh process runs normally.

Two more switches make what happens next observable: every task start is appended to
``FAULT_RUNS`` ("pid task-id task-name"), so a test can see one message run in two
processes; and once a process has paused, later tasks wait at their start until the file
``FAULT_RELEASE`` exists, so the test can inspect the database between the kill and the
redelivery.
"""

import os
import re
import time

from celery.signals import task_postrun, task_prerun
from django.db import connection

from swampclub.celery import app

__all__ = ["app"]

_FAULT_TASK = os.environ.get("FAULT_TASK", "")
_FAULT_SQL = re.compile(os.environ.get("FAULT_PAUSE_SQL", r"(?!)"), re.IGNORECASE)
_FAULT_MARKER = os.environ.get("FAULT_MARKER", "")
_FAULT_RUNS = os.environ.get("FAULT_RUNS", "")
_FAULT_RELEASE = os.environ.get("FAULT_RELEASE", "")
_running: dict[str, str | None] = {"task": None}


def _pause_after_matching_statement(execute, sql, params, many, context):
    result = execute(sql, params, many, context)
    if _running["task"] == _FAULT_TASK and _FAULT_SQL.search(sql or ""):
        try:
            fd = os.open(_FAULT_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return result  # another process already paused once: run normally
        # Record whether the statement really ran inside a transaction, so the test can
        # tell "killed mid-batch" apart from "killed between autocommitted statements".
        state = "atomic" if connection.in_atomic_block else "autocommit"
        os.write(fd, f"{os.getpid()} {state}\n".encode())
        os.close(fd)
        _wait_for(lambda: False)  # the test kills the process long before the deadline
    return result


def _wait_for(condition, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@task_prerun.connect
def _task_started(sender=None, task_id=None, **kwargs) -> None:
    _running["task"] = sender.name if sender else None
    if _FAULT_RUNS:
        with open(_FAULT_RUNS, "a") as runs:
            runs.write(f"{os.getpid()} {task_id} {_running['task']}\n")
    if _FAULT_RELEASE and os.path.exists(_FAULT_MARKER):
        _wait_for(lambda: os.path.exists(_FAULT_RELEASE))
    if not getattr(connection, "_fault_wrapper_installed", False):
        connection.execute_wrappers.append(_pause_after_matching_statement)
        connection._fault_wrapper_installed = True


@task_postrun.connect
def _task_finished(**kwargs) -> None:
    _running["task"] = None
