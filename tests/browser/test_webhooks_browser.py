"""The webhook endpoint page clicked through in Chromium: create (secret shown once), send
a test event, and watch its row appear in the delivery log without a reload."""

import re

import pytest
from django.contrib.auth.models import Permission

from tests.browser.conftest import login, screenshot
from tests.factories import UserFactory
from tests.webhooks.receiver import Receiver
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import delivery_send

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_endpoint_secret_once_test_event_and_log_row(browser_page, browser_errors, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    receiver = Receiver().start()
    try:
        user = UserFactory(username="hookmaster", staff=True)
        user.user_permissions.add(
            *Permission.objects.filter(
                codename__in=["view_webhookendpoint", "change_webhookendpoint"]
            )
        )
        page = browser_page
        login(page, user)
        page.goto("/staff/webhooks/")
        page.get_by_label("URL", exact=True).fill(receiver.url)
        page.get_by_label("Description").fill("Integration test receiver")
        page.get_by_label("award.granted").check()
        page.get_by_label("tier.changed").check()
        page.get_by_role("button", name="Create endpoint").click()
        secret_box = page.get_by_label("Signing secret")
        secret_box.wait_for()
        secret = secret_box.input_value()
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/]+=*", secret)
        endpoint = WebhookEndpoint.objects.get()
        assert endpoint.secret == secret
        receiver.secret = secret

        page.get_by_role("link", name="Open the endpoint").click()
        page.get_by_role("heading", name=re.compile(r"Webhook #\d+")).wait_for()
        assert secret not in page.content()
        page.get_by_role("button", name="Send a test event").click()
        page.get_by_text("Test event queued").wait_for()
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        # The worker's part, done here: one attempt at the queued delivery.
        assert delivery_send(delivery_id=delivery.pk) == "delivered"
        assert receiver.received[0].verified
        row = page.locator(f"#delivery-{delivery.pk}")
        row.locator(".badge-ok").wait_for(timeout=15_000)  # the log polled itself
        text = row.inner_text()
        assert "webhook.test" in text
        assert "200" in text
        screenshot(page, "staff-webhook")
        assert browser_errors == []
    finally:
        receiver.stop()
