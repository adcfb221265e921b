"""The per-endpoint sender: batches over keep-alive connections with a few threads, the
per-member order inside them, stopping when the endpoint is in trouble, and pruning."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections
from django.utils import timezone

from awards.services import award_grant
from scoring.models import OutboxEvent
from swampclub.celery import app
from tests.factories import UserFactory
from tests.webhooks.helpers import drain
from tests.webhooks.receiver import Receiver, free_port
from webhooks.models import WebhookDelivery, WebhookFanout
from webhooks.services import endpoint_create, endpoint_deliver, events_dispatch, webhooks_prune
from webhooks.services.claims import claim_batch

pytestmark = pytest.mark.django_db


def grant(recipient, granter, key, points=500):
    return award_grant(
        recipient=recipient,
        points=points,
        reason="Bog cleanup",
        idempotency_key=key,
        granted_by=granter,
        source="form",
    )


def test_one_run_sends_every_batch_in_member_order(receivers, granter, settings):
    settings.WEBHOOK_BATCH_SIZE = 4
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 3
    receiver = receivers()
    endpoint, receiver.secret = endpoint_create(url=receiver.url, event_types=["award.granted"])
    members = [UserFactory() for _ in range(4)]
    for n in range(3):
        for member in members:
            grant(member, granter, key=f"k{n}")
    events_dispatch()
    assert endpoint_deliver(endpoint_id=endpoint.pk) == 12
    assert len(receiver.received) == 12
    assert all(r.verified for r in receiver.received)
    assert set(WebhookDelivery.objects.values_list("state", "attempts")) == {("delivered", 1)}
    awards_by_member: dict[str, list[int]] = {}
    for request in receiver.received:
        data = request.payload["data"]
        awards_by_member.setdefault(data["username"], []).append(data["award_id"])
    assert len(awards_by_member) == 4
    for award_ids in awards_by_member.values():
        assert award_ids == sorted(award_ids)  # each member's events in outbox order
    assert endpoint_deliver(endpoint_id=endpoint.pk) == 0  # nothing left


def test_batch_stops_when_the_endpoint_does_not_answer(receivers, granter, settings):
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 1
    port = free_port()
    down = Receiver(port=port)  # not started: connections are refused
    endpoint, down.secret = endpoint_create(url=down.url, event_types=["award.granted"])
    for _ in range(5):
        grant(UserFactory(), granter, key="k")
    events_dispatch()
    before = timezone.now()
    assert endpoint_deliver(endpoint_id=endpoint.pk) == 1
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    tried, untried = deliveries[0], deliveries[1:]
    assert (tried.state, tried.attempts, tried.last_status) == ("pending", 1, None)
    assert tried.last_error
    assert tried.next_attempt_at > before
    for delivery in untried:  # put back without an attempt, to wait as long as the retry
        assert (delivery.state, delivery.attempts, delivery.last_error) == ("pending", 0, "")
        assert delivery.locked_until is None
        assert delivery.next_attempt_at >= tried.next_attempt_at
    up = receivers(port=port, secret=down.secret)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert endpoint_deliver(endpoint_id=endpoint.pk) == 5
    assert len(up.received) == 5
    assert {r.headers["webhook-id"] for r in up.received} == set(
        OutboxEvent.objects.values_list("event_id", flat=True)
    )
    assert sorted(WebhookDelivery.objects.values_list("attempts", flat=True)) == [1, 1, 1, 1, 2]


def test_paused_endpoint_sends_nothing(receivers, member, granter):
    from webhooks.services import endpoint_set_active

    receiver = receivers()
    endpoint, receiver.secret = endpoint_create(url=receiver.url, event_types=["award.granted"])
    grant(member, granter, key="k")
    events_dispatch()
    endpoint_set_active(endpoint=endpoint, active=False)
    assert endpoint_deliver(endpoint_id=endpoint.pk) == 0
    assert receiver.received == []
    endpoint_set_active(endpoint=endpoint, active=True)
    assert endpoint_deliver(endpoint_id=endpoint.pk) == 1


def test_prune_deletes_delivered_rows_past_retention(receivers, granter, settings):
    settings.WEBHOOK_RETENTION_DAYS = 30
    receiver = receivers(script=[500] * 10)
    _, receiver.secret = endpoint_create(url=receiver.url, event_types=["award.granted"])
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    old_dead = grant(UserFactory(), granter, key="a").award
    drain()
    old_delivered, recent = (grant(UserFactory(), granter, key=k).award for k in "bc")
    receiver.script.clear()
    drain()
    long_ago = timezone.now() - timedelta(days=31)
    olds = OutboxEvent.objects.filter(source_id__in=[old_dead.pk, old_delivered.pk])
    olds.update(occurred_at=long_ago)
    WebhookDelivery.objects.filter(event__in=olds).update(delivered_at=long_ago)
    # An old event no endpoint wanted (a revocation-free tier change would be the same).
    unsubscribed = OutboxEvent.objects.create(
        event_id="msg_unsubscribed",
        event_type="tier.changed",
        member_id=granter.pk,
        source_id=999_999,
        occurred_at=long_ago,
        payload={},
    )
    assert WebhookDelivery.objects.filter(state="dead").count() == 1
    pruned_event = OutboxEvent.objects.get(source_id=old_delivered.pk).pk
    assert WebhookFanout.objects.filter(event_id=pruned_event).exists()

    assert webhooks_prune() == {"deliveries": 1, "events": 2}
    sources = set(OutboxEvent.objects.values_list("source_id", flat=True))
    assert sources == {old_dead.pk, recent.pk}  # a dead delivery keeps its event
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"dead", "delivered"}
    assert not WebhookFanout.objects.filter(event_id=pruned_event).exists()
    assert not OutboxEvent.objects.filter(pk=unsubscribed.pk).exists()
    assert webhooks_prune() == {"deliveries": 0, "events": 0}


def test_prune_and_sender_tasks_are_routed_and_scheduled():
    entry = django_settings.CELERY_BEAT_SCHEDULE["webhooks-prune"]
    assert entry["task"] == "webhooks.prune"
    assert 0 < entry["options"]["expires"] <= entry["schedule"].total_seconds()
    for name in ("webhooks.endpoint_deliver", "webhooks.prune"):
        assert app.amqp.router.route({}, name)["queue"].name == "webhooks"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL SKIP LOCKED")
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_take_one_delivery_twice():
    granter = UserFactory(username="granter", staff=True)
    endpoint, _ = endpoint_create(url="http://127.0.0.1:9/hook", event_types=["award.granted"])
    for n in range(40):
        grant(UserFactory(username=f"m{n}"), granter, key="k")
    events_dispatch()
    barrier = threading.Barrier(4)
    claimed: list[list[int]] = []

    def work():
        try:
            barrier.wait(timeout=30)
            claimed.append(claim_batch(endpoint_id=endpoint.pk, now=timezone.now(), limit=15))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [pk for batch in claimed for pk in batch]
    assert len(every) == len(set(every))
    assert len(every) == WebhookDelivery.objects.filter(state="sending").count()
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) <= {0, 1}
