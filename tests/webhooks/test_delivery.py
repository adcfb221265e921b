"""Deliveries to a real HTTP receiver that verifies signatures with ``standardwebhooks``."""

import json
import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from awards.models import Award
from awards.services import award_grant, award_revoke
from scoring.models import OutboxEvent
from tests.concurrency import errors_of, run_together
from tests.factories import UserFactory
from tests.webhooks.helpers import drain
from tests.webhooks.receiver import free_port
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    delivery_redeliver,
    delivery_send,
    endpoint_create,
    endpoint_rotate_secret,
    endpoint_send_test,
    events_dispatch,
)

pytestmark = pytest.mark.django_db

ALL = ["award.granted", "award.revoked", "tier.changed"]


def grant(recipient, granter, points=500, key="k1", **extra):
    return award_grant(
        recipient=recipient,
        points=points,
        reason=extra.pop("reason", "Keynote at Swamp Summit 2026"),
        idempotency_key=key,
        granted_by=granter,
        source="form",
        **extra,
    )


def endpoint_for(receiver, events=ALL, **options):
    endpoint, secret = endpoint_create(url=receiver.url, event_types=events, **options)
    receiver.secret = secret
    return endpoint


def test_grant_delivers_one_signed_event(receivers, member, granter):
    receiver = receivers()
    endpoint = endpoint_for(receiver)
    result = grant(member, granter, points=500)
    drain()
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.verified
    assert got.headers["content-type"] == "application/json"
    event = OutboxEvent.objects.get()
    assert got.headers["webhook-id"] == event.event_id
    assert got.payload["type"] == "award.granted"
    assert got.payload["data"]["award_id"] == result.award.pk
    assert got.payload["data"]["tier"] == {"ordinal": 1, "name": "Sludge Whelp"}
    assert set(got.payload) == {"type", "timestamp", "data"}
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.state == "delivered"
    assert delivery.attempts == 1
    assert delivery.last_status == 200
    assert delivery.response_excerpt == "ok"


def test_grant_crossing_a_tier_delivers_award_granted_and_tier_changed(receivers, member, granter):
    receiver = receivers()
    endpoint_for(receiver)
    grant(member, granter, points=20_000)
    drain()
    assert [r.verified for r in receiver.received] == [True, True]
    assert len(receiver.of_type("award.granted")) == 1
    (change,) = receiver.of_type("tier.changed")
    assert change.payload["data"]["to"] == {"ordinal": 2, "name": "Murk Lurker"}
    assert change.payload["data"]["cause"] == "award"


def test_rolled_back_grant_delivers_nothing(receivers, member, granter):
    receiver = receivers()
    endpoint_for(receiver)

    def grant_then_fail():
        with transaction.atomic():
            grant(member, granter, points=20_000)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        grant_then_fail()
    drain()
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


def test_unsubscribed_types_are_not_delivered(receivers, member, granter):
    receiver = receivers()
    endpoint_for(receiver, events=["tier.changed"])
    grant(member, granter, points=500)
    drain()
    assert receiver.received == []


def test_receiver_down_then_up_gets_it_with_the_same_id(receivers, member, granter):
    port = free_port()
    from tests.webhooks.receiver import Receiver

    down = Receiver(port=port)  # not started: connections are refused
    endpoint = endpoint_for(down, events=["award.granted"])
    grant(member, granter)
    events_dispatch()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    for _ in range(2):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=delivery.created_at)
        assert delivery_send(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.last_status is None
    assert delivery.last_error
    up = receivers(port=port, secret=down.secret)
    drain()
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    assert delivery.attempts == 3
    assert len(up.received) == 1
    assert up.received[0].verified
    assert up.received[0].headers["webhook-id"] == OutboxEvent.objects.get().event_id


def test_429_with_retry_after_waits(receivers, member, granter):
    receiver = receivers(script=[(429, {"Retry-After": "1"})])
    endpoint_for(receiver, events=["award.granted"])
    grant(member, granter)
    drain()
    first, second = receiver.received
    assert second.at - first.at >= 1.0
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert WebhookDelivery.objects.get().attempts == 2


def test_hanging_receiver_times_out_other_endpoint_unaffected(receivers, member, granter, settings):
    settings.WEBHOOK_TIMEOUT_S = 0.5
    hanging = receivers(script=["hang"], hang_s=5)
    healthy = receivers()
    slow = endpoint_for(hanging, events=["award.granted"])
    fine = endpoint_for(healthy, events=["award.granted"])
    grant(member, granter)
    events_dispatch()
    slow_delivery = WebhookDelivery.objects.get(endpoint=slow)
    fine_delivery = WebhookDelivery.objects.get(endpoint=fine)
    started = time.monotonic()
    assert delivery_send(delivery_id=slow_delivery.pk) == "retry"
    assert time.monotonic() - started < 3
    slow_delivery.refresh_from_db()
    assert slow_delivery.last_error == "timed out"
    # The other endpoint's delivery is not held behind the hanging one.
    assert delivery_send(delivery_id=fine_delivery.pk) == "delivered"
    assert len(healthy.received) == 1


def test_member_order_is_kept_when_an_earlier_event_fails(receivers, member, granter):
    # The first event fails once; the second must wait for it, not overtake it.
    receiver = receivers(script=[500])
    endpoint = endpoint_for(receiver)
    result = grant(member, granter, points=20_000)
    award_revoke(award=result.award, revoked_by=granter, reason="entered twice")
    events_dispatch()
    deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("event_id"))
    assert len(deliveries) == 4
    assert delivery_send(delivery_id=deliveries[0].pk) == "retry"
    for later in deliveries[1:]:
        assert delivery_send(delivery_id=later.pk) == "blocked"
    drain()
    order = [(json.loads(r.body)["type"], r.headers["webhook-id"]) for r in receiver.received]
    expected = list(OutboxEvent.objects.order_by("id").values_list("event_type", "event_id"))
    assert order[1:] == expected  # the first request was the failed attempt
    assert order[0] == expected[0]
    changes = {r.headers["webhook-id"]: r.payload["data"] for r in receiver.of_type("tier.changed")}
    moves = [(d["from"]["ordinal"], d["to"]["ordinal"]) for d in changes.values()]
    assert moves == [(1, 2), (2, 1)]


def test_gives_up_into_dead_then_redelivers(receivers, member, granter, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver = receivers(script=[500, 500, 500])
    endpoint_for(receiver, events=["award.granted"])
    grant(member, granter)
    drain()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "dead"
    assert delivery.attempts == 3
    assert delivery.last_status == 500
    delivery_redeliver(delivery=delivery)
    drain()
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(receiver.received) == 4
    assert ids == {delivery.message_id}


def test_redirects_are_not_followed(receivers, member, granter):
    target = receivers()
    receiver = receivers(script=[(302, {"Location": target.url})] * 10)
    endpoint_for(receiver, events=["award.granted"])
    grant(member, granter)
    events_dispatch()
    delivery = WebhookDelivery.objects.get()
    assert delivery_send(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.last_status == 302
    assert target.received == []


def test_rotation_signs_with_both_secrets_during_grace(receivers, member, granter):
    from standardwebhooks.webhooks import Webhook

    receiver = receivers()
    endpoint = endpoint_for(receiver, events=["award.granted"])
    old_secret = receiver.secret
    endpoint, new_secret = endpoint_rotate_secret(endpoint=endpoint)
    assert new_secret.startswith("whsec_")
    assert new_secret != old_secret
    grant(member, granter)
    drain()
    got = receiver.received[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old_secret, new_secret):
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "award.granted"


def test_test_event_is_signed_and_logged(receivers):
    receiver = receivers()
    endpoint = endpoint_for(receiver, events=["tier.changed"])
    delivery = endpoint_send_test(endpoint=endpoint)
    assert delivery_send(delivery_id=delivery.pk) == "delivered"
    assert receiver.received[0].verified
    assert receiver.received[0].payload["type"] == "webhook.test"


def test_paused_endpoint_keeps_deliveries_until_resumed(receivers, member, granter):
    from webhooks.services import endpoint_set_active

    receiver = receivers()
    endpoint = endpoint_for(receiver, events=["award.granted"])
    endpoint_set_active(endpoint=endpoint, active=False)
    grant(member, granter)
    events_dispatch()
    delivery = WebhookDelivery.objects.get()
    assert delivery_send(delivery_id=delivery.pk) == "paused"
    assert receiver.received == []
    endpoint_set_active(endpoint=endpoint, active=True)
    drain()
    assert len(receiver.received) == 1


def test_replay_resends_a_range_with_the_same_ids(receivers, member, granter):
    receiver = receivers()
    endpoint = endpoint_for(receiver)
    grant(member, granter, points=20_000)
    drain()
    first_ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(first_ids) == 2
    call_command("webhooks_replay", "--since", "1h", "--endpoint", str(endpoint.pk))
    drain()
    assert [r.headers["webhook-id"] for r in receiver.received] == first_ids * 2
    assert all(r.verified for r in receiver.received)


def test_create_webhook_endpoint_command_prints_secret_last(capsys):
    call_command(
        "create_webhook_endpoint",
        "http://127.0.0.1:9/hook",
        "--event",
        "award.granted",
        "--event",
        "tier.changed",
        "--format",
        "discord",
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    endpoint = WebhookEndpoint.objects.get()
    assert last == endpoint.secret
    assert last.startswith("whsec_")
    assert endpoint.event_types == ["award.granted", "tier.changed"]
    assert endpoint.format == "discord"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL concurrency")
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_grants_of_one_key_deliver_one_event(receivers):
    granter = UserFactory(username="granter", staff=True)
    member = UserFactory()
    receiver = receivers()
    endpoint_for(receiver, events=["award.granted"])

    def work():
        grant(member, granter, points=700, key="summit-keynote")

    errors = errors_of(run_together([work] * 50))
    assert not errors
    drain()
    assert Award.objects.count() == 1
    assert len(receiver.of_type("award.granted")) == 1
    assert receiver.received[0].verified


def test_sweep_requeues_only_deliveries_first_in_line(receivers, member, granter, settings):
    from django.utils import timezone

    from webhooks.services import deliveries_sweep

    settings.WEBHOOK_SWEEP_GRACE_S = 0
    receiver = receivers()
    endpoint = endpoint_for(receiver, events=["award.granted"])
    for n in range(3):
        grant(member, granter, key=f"k{n}")
    events_dispatch()
    deliveries = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("event_id"))
    WebhookDelivery.objects.filter(endpoint=endpoint).update(next_attempt_at=timezone.now())
    assert deliveries_sweep() == 1  # the first; the other two wait behind it
    drain()
    assert [r.payload["data"]["award_id"] for r in receiver.received] == sorted(
        r.payload["data"]["award_id"] for r in receiver.received
    )
    assert len(deliveries) == 3
