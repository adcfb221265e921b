"""Driving deliveries in-process: the services the worker's tasks call, called directly."""

import time
from collections.abc import Callable

from django.utils import timezone

from webhooks.models import WebhookDelivery
from webhooks.services import delivery_send, events_dispatch


def drain(*, until: Callable[[], bool] | None = None, timeout: float = 15.0) -> None:
    """Fan out and send every due delivery (as the worker would) until nothing is open or
    ``until()`` holds; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events_dispatch()
        if until is not None and until():
            return
        open_ = WebhookDelivery.objects.filter(state__in=WebhookDelivery.OPEN_STATES)
        if until is None and not open_.exists():
            return
        due = open_.filter(next_attempt_at__lte=timezone.now(), endpoint__active=True)
        for pk in due.order_by("event_id", "pk").values_list("pk", flat=True):
            delivery_send(delivery_id=pk)
        time.sleep(0.02)
    raise AssertionError("deliveries did not settle in time")
