"""Celery workers killed with SIGKILL in the middle of a batch; duplicate deliveries; two beats.

Real worker and beat processes run against the test database and a private Redis. A
worker is paused inside its batch transaction right after the batch's last write (see
``fault_app``), then killed: the batch must vanish entirely, and the redelivered or next
run must apply it exactly once — the totals then equal a replay from the stored events.
"""

import os
import re
import signal

import pytest
from django.db import transaction

from awards.models import Award
from scoring.consumer import events_consume
from scoring.models import (
    MemberMetrics,
    MetricsSnapshot,
    PendingEvent,
    PipelineRun,
    ScoreHistory,
    TelemetryEvent,
    TierBadgeClaim,
    UserScore,
)
from tests.factories import UserFactory
from tests.reliability.data import pending_award_events, pending_cli_events
from tests.reliability.harness import Fault, wait_until
from tests.reliability.replay import assert_ledger_consistent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _claimable_events() -> int:
    # What another consumer could claim right now: queued events nobody holds locked.
    with transaction.atomic():
        return len(
            PendingEvent.objects.select_for_update(skip_locked=True).values_list(
                "event_id", flat=True
            )
        )


def _claimable_snapshots() -> int:
    with transaction.atomic():
        return len(
            MetricsSnapshot.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .values_list("id", flat=True)
        )


def _pending_events() -> int:
    return TelemetryEvent.objects.pending().count()


def _pending_snapshots() -> int:
    return MetricsSnapshot.objects.filter(processed_at__isnull=True).count()


def test_worker_child_killed_mid_consumer_batch_is_redelivered_and_counts_once(
    processes, sender, tmp_path
):
    members = pending_cli_events(members=8, per_member=100)
    awards = pending_award_events(
        granter=UserFactory(username="award-bot", granter=True), recipient_ids=members
    )
    cli_total = 800
    total = cli_total + awards
    fault = Fault(
        tmp_path=tmp_path,
        task="scoring.events_consume",
        # The batch's last write: metrics folded, events marked, snapshots inserted; only
        # the COMMIT is missing when the worker dies.
        pause_after_sql=r'^\s*INSERT INTO "scoring_metricssnapshot"',
    )
    worker = processes.worker(
        app="tests.reliability.fault_app", pool="prefork", concurrency=1, env=fault.env()
    )
    task_id = sender.send_task("scoring.events_consume").id

    pid, state = fault.wait_paused(worker)
    assert state == "atomic", "the pause must be inside the batch transaction"
    assert pid in worker.children(), "the pool process, not the supervisor, runs the task"
    # The whole backlog is one claimed batch: every event pending and locked.
    assert _pending_events() == total
    assert _claimable_events() == 0

    os.kill(pid, signal.SIGKILL)
    # PostgreSQL rolls the dead connection's transaction back: the locks go, and nothing
    # the batch wrote is visible — not the metrics, the marks, nor the snapshots.
    wait_until(lambda: _claimable_events() == total, timeout=30, message="locks released")
    assert _pending_events() == total
    assert not MemberMetrics.objects.exists()
    assert not MetricsSnapshot.objects.exists()
    assert not Award.objects.exists()
    assert not UserScore.objects.exists()
    assert not PipelineRun.objects.filter(kind="consume").exists()

    # acks_late + reject_on_worker_lost: the supervisor requeues the message and a fresh
    # pool process runs the same task again, to completion.
    fault.release()
    wait_until(lambda: _pending_events() == 0, timeout=60, message="the redelivered batch")
    runs = [(p, t) for p, t, name in fault.runs() if name == "scoring.events_consume"]
    assert [t for _, t in runs[:2]] == [task_id, task_id]
    assert runs[0][0] != runs[1][0], "the redelivery ran in a new process"
    assert re.search(r"WorkerLostError|signal 9", worker.log())
    assert sum(MemberMetrics.objects.values_list("total_events", flat=True)) == cli_total
    # Eight awards, the resent one counted once, each granted exactly once.
    assert Award.objects.count() == 8
    assert set(MemberMetrics.objects.values_list("award_points", flat=True)) == {25000}

    sender.send_task("scoring.scores_process_batch")
    wait_until(lambda: _pending_snapshots() == 0, timeout=60, message="the score batch")
    wait_until(lambda: UserScore.objects.count() == 8, timeout=30, message="eight scores")
    assert_ledger_consistent()


def test_worker_killed_mid_score_batch_leaves_nothing_and_beat_finishes_it(
    processes, sender, tmp_path
):
    members = pending_cli_events(members=30, per_member=12)
    assert events_consume() == 360  # folded in-process: the score batch is the subject
    assert _pending_snapshots() == 30
    fault = Fault(
        tmp_path=tmp_path,
        task="scoring.scores_process_batch",
        # The refresh's last write: scores upserted, history written, claims inserting.
        pause_after_sql=r'^\s*INSERT INTO "scoring_tierbadgeclaim"',
    )
    worker = processes.worker(app="tests.reliability.fault_app", pool="solo", env=fault.env())
    sender.send_task("scoring.scores_process_batch")

    pid, state = fault.wait_paused(worker)
    assert state == "atomic"
    assert pid == worker.pid
    assert _claimable_snapshots() == 0

    worker.kill()  # the whole worker: no supervisor is left to requeue anything
    wait_until(lambda: _claimable_snapshots() == 30, timeout=30, message="locks released")
    assert _pending_snapshots() == 30
    assert not UserScore.objects.exists()
    assert not ScoreHistory.objects.exists()
    assert not TierBadgeClaim.objects.exists()

    # The killed message stays unacknowledged in Redis until its visibility timeout; the
    # work itself waits in PostgreSQL, and the next scheduled run picks it up.
    processes.worker(wait=False)
    processes.beat(env={"SCORE_BATCH_INTERVAL_S": "1", "CONSUME_INTERVAL_S": "1"})
    wait_until(lambda: _pending_snapshots() == 0, timeout=60, message="beat's score batch")
    assert set(UserScore.objects.values_list("member_id", flat=True)) == set(members)
    assert ScoreHistory.objects.count() == 30
    assert_ledger_consistent()


def _succeeded_counts(log: str, task: str) -> list[int]:
    pattern = rf"Task {re.escape(task)}\[[^\]]+\] succeeded.*: (\d+)"
    return [int(n) for n in re.findall(pattern, log)]


def test_duplicate_deliveries_and_two_beats_count_every_event_once(processes, sender):
    pending_cli_events(members=40, per_member=75)
    total = 3000
    # Small batches, so many consumers interleave batch by batch over the same backlog.
    env = {"CONSUMER_BATCH_SIZE": "50", "SCORE_BATCH_SIZE": "7"}
    workers = [processes.worker(pool="prefork", concurrency=2, env=env, wait=False) for _ in "ab"]
    # The same message delivered three times (one task id), plus fresh wake-ups...
    for _ in range(3):
        sender.send_task("scoring.events_consume", task_id="duplicate-delivery")
    for _ in range(4):
        sender.send_task("scoring.events_consume")
    # ...and two beat processes started by mistake, both scheduling everything.
    beat_env = {"CONSUME_INTERVAL_S": "1", "SCORE_BATCH_INTERVAL_S": "1"}
    beats = [processes.beat(env=beat_env, wait=False) for _ in "ab"]
    for process in workers + beats:
        process.wait_for_log(" ready." if process in workers else "beat: Starting")

    wait_until(lambda: _pending_events() == 0, timeout=90, message="the backlog drained")
    wait_until(
        lambda: _pending_snapshots() == 0 and UserScore.objects.count() == 40,
        timeout=60,
        message="every member scored",
    )
    for beat in beats:
        beat.wait_for_log("Sending due task consume-events")

    # Each run returns how many events it claimed: across every concurrent run the claims
    # add up to the backlog exactly — no event was taken by two consumers.
    logs = "".join(worker.log() for worker in workers)
    claimed = _succeeded_counts(logs, "scoring.events_consume")
    assert sum(claimed) == total
    assert len([n for n in claimed if n]) >= 2, "the backlog was shared between consumers"
    assert sum(MemberMetrics.objects.values_list("total_events", flat=True)) == total
    assert_ledger_consistent()
