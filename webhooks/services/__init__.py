"""Webhook writes, by concern: endpoints, fan-out, sending, redelivery and replay, and
beat's housekeeping. Callers import from here.

Delivery guarantees (docs/webhooks.md):

- **At least once.** Every outbox event gets one ``WebhookDelivery`` per subscribed
  endpoint (UNIQUE (event, endpoint)), created by ``events_dispatch`` after the event
  commits. PostgreSQL, not the broker, holds the work: a lost task message, a worker killed
  mid-request or a broker outage only delays it (``deliveries_sweep`` re-queues anything
  left behind). A retry, a redelivery and a replay reuse the event's id (``webhook-id``),
  so a receiver can drop duplicates.
- **One sender at a time.** An attempt claims its delivery (state ``sending``, a lease in
  ``locked_until``) in a statement of its own before the HTTP request, so no transaction
  stays open while a receiver thinks; if the worker dies, the lease runs out and the sweep
  sends again.
- **Per-member order.** Only the head of a member's line (no earlier open delivery of the
  same member to the same endpoint) is ever claimed, so a member's events reach an endpoint
  in outbox order.
- **Isolation.** An endpoint's deliveries are sent by its own sender task on the
  ``webhooks`` queue (a batch at a time, a few threads, 5 s timeouts); a slow or dead
  endpoint ties up its own sender only, never the pipeline's queue, a grant, or another
  endpoint.
- **Retries.** Exponential backoff with jitter; a 429's ``Retry-After`` is honoured; after
  ``WEBHOOK_MAX_ATTEMPTS`` attempts the delivery is ``dead`` (shown on the staff dashboard)
  until staff redeliver it.
"""

from webhooks.services.attempts import backoff_s
from webhooks.services.endpoints import (
    endpoint_create,
    endpoint_errors,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_set_active,
)
from webhooks.services.fanout import deliveries_create, events_dispatch
from webhooks.services.maintenance import deliveries_sweep, webhooks_prune
from webhooks.services.replay import delivery_redeliver, webhooks_replay
from webhooks.services.sending import delivery_send, endpoint_deliver

__all__ = [
    "backoff_s",
    "deliveries_create",
    "deliveries_sweep",
    "delivery_redeliver",
    "delivery_send",
    "endpoint_create",
    "endpoint_deliver",
    "endpoint_errors",
    "endpoint_rotate_secret",
    "endpoint_send_test",
    "endpoint_set_active",
    "events_dispatch",
    "webhooks_prune",
    "webhooks_replay",
]
