"""The ingest load generator: several processes, each a closed loop over one connection.

Processes (not threads) so the client's JSON and socket work never shares a GIL; they are
started with ``spawn`` so none inherits the parent's database connections. Each process
builds a few request bodies up front and only swaps fresh event ids into them while the
clock runs (a real insert per event, never a duplicate), so the client costs the two cores
as little as possible. A warm-up period is sent and not counted.
"""

import http.client
import json
import multiprocessing
import queue
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench.datagen import cli_event, fake_uuid
from bench.web import Connection, percentile

ID_MARK = "@@EVENT-ID@@"
TEMPLATES_PER_CLIENT = 8


@dataclass
class IngestResult:
    """One load run: throughput, latency and what the server answered."""

    batch: int
    clients: int
    seconds: float
    requests: int
    accepted: int
    duplicates: int
    statuses: dict[int, int]
    events_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    first_error: str


def _templates(rng: random.Random, batch: int, distinct_id: str) -> list[list[bytes]]:
    """Request bodies split at each event id, to be joined with fresh ids per request."""
    now = datetime.now(UTC)
    templates = []
    for _ in range(TEMPLATES_PER_CLIENT):
        events = [
            cli_event(
                rng,
                distinct_id=distinct_id,
                started_at=now - timedelta(seconds=rng.randrange(600)),
                event_id=ID_MARK,
            )
            for _ in range(batch)
        ]
        payload = events[0] if batch == 1 else {"events": events}
        body = json.dumps(payload, separators=(",", ":")).encode()
        templates.append(body.split(ID_MARK.encode()))
    return templates


def _client(
    index: int,
    host: str,
    port: int,
    keys: list[str],
    batch: int,
    warmup_s: float,
    seconds: float,
    seed: int,
    ready,
    go,
    results,
) -> None:
    rng = random.Random(seed)
    templates = _templates(rng, batch, fake_uuid(rng))
    conn = Connection(host, port, timeout=120)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = duplicates = 0
    first_error = ""
    last_end = 0.0
    ready.put(index)
    go.wait()
    measure_from = time.perf_counter() + warmup_s
    stop_at = measure_from + seconds
    n = 0
    while True:
        segments = templates[n % TEMPLATES_PER_CLIENT]
        parts = [segments[0]]
        for segment in segments[1:]:
            parts.append(fake_uuid(rng).encode())
            parts.append(segment)
        body = b"".join(parts)
        headers = {"Content-Type": "application/json", "x-api-key": keys[n % len(keys)]}
        n += 1
        started = time.perf_counter()
        if started >= stop_at:
            break
        try:
            conn.request("POST", "/ingest", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            conn.close()
            continue
        ended = time.perf_counter()
        if started < measure_from:
            continue
        last_end = ended
        latencies.append((ended - started) * 1000)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status == 202:
            answer = json.loads(data)
            accepted += answer.get("accepted", 0)
            duplicates += answer.get("duplicates", 0)
        elif not first_error:
            first_error = f"{response.status} {data[:300].decode(errors='replace')}"
    conn.close()
    results.put(
        {
            "latencies": latencies,
            "statuses": statuses,
            "accepted": accepted,
            "duplicates": duplicates,
            "first_error": first_error,
            "measure_from": measure_from,
            "last_end": last_end,
        }
    )


def ingest_load(
    *,
    host: str,
    port: int,
    keys: list[str],
    batch: int,
    clients: int,
    seconds: float,
    warmup_s: float,
    seed: int,
) -> IngestResult:
    """Run ``clients`` closed-loop posters of ``batch``-event requests; return the figures.

    Throughput counts the events the server said it accepted (``accepted`` in its 202
    answers) during the measured window, divided by that window.
    """
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=_client,
            args=(
                i,
                host,
                port,
                keys,
                batch,
                warmup_s,
                seconds,
                seed * 100 + i,
                ready,
                go,
                results,
            ),
            daemon=True,
        )
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    waiting = len(procs)
    deadline = time.monotonic() + 120
    while waiting:
        try:
            ready.get(timeout=0.5)
            waiting -= 1
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for proc in procs:
                    proc.kill()
                raise RuntimeError(f"load generator processes failed to start ({dead})") from None
    go.set()
    parts = [results.get(timeout=warmup_s + seconds + 300) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    latencies = [ms for p in parts for ms in p["latencies"]]
    statuses: dict[int, int] = {}
    for p in parts:
        for status, count in p["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    accepted = sum(p["accepted"] for p in parts)
    start = min(p["measure_from"] for p in parts)
    end = max((p["last_end"] for p in parts), default=start)
    window = max(end - start, 1e-9)
    return IngestResult(
        batch=batch,
        clients=clients,
        seconds=window,
        requests=len(latencies),
        accepted=accepted,
        duplicates=sum(p["duplicates"] for p in parts),
        statuses=statuses,
        events_per_s=accepted / window,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        first_error=next((p["first_error"] for p in parts if p["first_error"]), ""),
    )
