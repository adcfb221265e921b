"""The one way the PostgreSQL concurrency tests race work: threads released by a barrier.

Each worker runs in its own thread, so with its own database connection (closed when it
is done); all wait at one barrier and start together.
"""

import threading
from collections.abc import Callable
from typing import Any


def run_together(
    workers: list[Callable[[], Any]], *, timeout: float = 30, raise_first_error: bool = False
) -> list[Any]:
    """Run each worker in its own thread and connection, released at once by a barrier.

    Returns each worker's result, or the exception it raised in its place; with
    ``raise_first_error`` the first exception (in worker order) is raised instead. Fails
    when a worker is still running two minutes after the start.
    """
    from django.db import connections

    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(index: int, work: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            results[index] = work()
        except BaseException as exc:  # reported to the caller, never lost with the thread
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    if raise_first_error:
        for result in results:
            if isinstance(result, BaseException):
                raise result
    return results


def errors_of(results: list[Any]) -> list[BaseException]:
    """The exceptions among ``run_together``'s results."""
    return [result for result in results if isinstance(result, BaseException)]
