"""Endpoint writes: create, pause/resume, rotate the secret, send a test event."""

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from scoring.outbox import event_id_new
from webhooks.formats import TEST_EVENT_TYPE
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.queueing import endpoints_enqueue_on_commit
from webhooks.signing import secret_new
from webhooks.urlsafety import UnsafeUrl, url_check_at_save

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def endpoint_errors(
    *, url: Any, event_types: Any, format: Any, private_awards: Any = "points"
) -> dict[str, list[str]]:
    """The problems with an endpoint's settings, by field; empty when valid.

    The URL must pass ``webhooks.urlsafety`` (scheme, no private or local address unless
    allowed); event types must be a non-empty subset of the known ones.
    """
    errors: dict[str, list[str]] = {}
    if not isinstance(url, str) or not url.strip():
        errors["url"] = ["Enter the URL to deliver to."]
    elif len(url) > 2000:
        errors["url"] = ["The URL must be at most 2,000 characters."]
    else:
        try:
            url_check_at_save(url.strip())
        except UnsafeUrl as exc:
            errors["url"] = [str(exc.message)]
    known = WebhookEndpoint.EVENT_TYPES
    if (
        not isinstance(event_types, (list, tuple))
        or not event_types
        or any(t not in known for t in event_types)
    ):
        errors["event_types"] = [f"Choose one or more of: {', '.join(known)}."]
    if format not in WebhookEndpoint.Format.values:
        errors["format"] = [f"Format must be one of {', '.join(WebhookEndpoint.Format.values)}."]
    if private_awards not in WebhookEndpoint.PrivateAwards.values:
        errors["private_awards"] = ["Choose how private awards are announced."]
    return errors


@transaction.atomic
def endpoint_create(
    *,
    url: str,
    event_types: Sequence[str],
    format: str = WebhookEndpoint.Format.JSON,
    description: str = "",
    private_awards: str = WebhookEndpoint.PrivateAwards.POINTS,
    created_by: "User | None" = None,
) -> tuple[WebhookEndpoint, str]:
    """Create an active endpoint; returns it and its new signing secret (``whsec_…``).

    Raises ``ValidationError`` keyed by field (``url``, ``event_types``, ``format``,
    ``private_awards``). The secret is returned so the caller can show it once.
    """
    if errors := endpoint_errors(
        url=url, event_types=list(event_types), format=format, private_awards=private_awards
    ):
        raise ValidationError(errors)
    secret = secret_new()
    endpoint = WebhookEndpoint.objects.create(
        url=url.strip(),
        description=description.strip()[:200],
        event_types=sorted(set(event_types)),
        format=format,
        private_awards=private_awards,
        secret=secret,
        created_by=created_by,
    )
    return endpoint, secret


@transaction.atomic
def endpoint_set_active(*, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    """Pause or resume an endpoint. While paused its deliveries are kept, not sent; on
    resume they go out in order."""
    endpoint.active = active
    endpoint.save(update_fields=["active", "updated_at"])
    if active:
        endpoints_enqueue_on_commit([endpoint.pk])
    return endpoint


@transaction.atomic
def endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, grace: timedelta | None = None
) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret; the old one keeps signing for ``grace`` (default
    ``WEBHOOK_SECRET_GRACE_S``) so receivers can switch without a gap. Returns the new
    secret (shown once)."""
    if grace is None:
        grace = timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_S)
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = secret_new()
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = timezone.now() + grace
    locked.secret = secret
    locked.save(
        update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
    )
    return locked, secret


@transaction.atomic
def endpoint_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to ``endpoint`` (signed like any other delivery)."""
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id=event_id_new(),
        event_type=TEST_EVENT_TYPE,
        test_payload={
            "type": TEST_EVENT_TYPE,
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "data": {"endpoint_id": endpoint.pk, "message": "Test event from Swamp Club"},
        },
        next_attempt_at=now,
        created_at=now,
    )
    endpoints_enqueue_on_commit([endpoint.pk])
    return delivery
