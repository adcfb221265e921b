"""Webhook task names, their queue and the beat sweep are part of the deployment contract."""

from django.conf import settings

from swampclub.celery import app
from webhooks import tasks


def test_task_names_are_pinned_and_routed_to_their_own_queue():
    assert tasks.events_dispatch_task.name == "webhooks.events_dispatch"
    assert tasks.delivery_send_task.name == "webhooks.delivery_send"
    assert tasks.deliveries_sweep_task.name == "webhooks.deliveries_sweep"
    router = app.amqp.router
    for name in ("webhooks.events_dispatch", "webhooks.delivery_send", "webhooks.deliveries_sweep"):
        assert router.route({}, name)["queue"].name == "webhooks"
    assert router.route({}, "scoring.events_consume")["queue"].name == "celery"


def test_beat_sweeps_for_left_behind_deliveries():
    entry = settings.CELERY_BEAT_SCHEDULE["webhooks-sweep"]
    assert entry["task"] == "webhooks.deliveries_sweep"
    assert 0 < entry["options"]["expires"] <= entry["schedule"].total_seconds()


def test_broker_outage_never_fails_the_commit(monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.events_dispatch_task, "apply_async", refuse)
    monkeypatch.setattr(tasks.delivery_send_task, "apply_async", refuse)
    tasks.outbox_committed()  # logged, not raised
    tasks.deliveries_enqueue([1, 2])
