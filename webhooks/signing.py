"""Secrets and Standard Webhooks signatures, through the ``standardwebhooks`` library."""

import base64
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone
from standardwebhooks.webhooks import Webhook

if TYPE_CHECKING:
    from webhooks.models import WebhookEndpoint

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def secret_new() -> str:
    """A new signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_header(
    *, secrets_in_use: list[str], message_id: str, timestamp: datetime, body: str
) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated.

    During a rotation's grace period both the new and the previous secret sign, so a
    receiver holding either verifies (the library accepts any matching signature).
    """
    return " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=timestamp, data=body)
        for secret in secrets_in_use
    )


def endpoint_signing_secrets(
    endpoint: "WebhookEndpoint", *, now: datetime | None = None
) -> list[str]:
    """The secrets that sign for ``endpoint`` now: its secret, and the previous one while
    its grace period lasts."""
    now = now or timezone.now()
    found = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        found.append(endpoint.previous_secret)
    return found
