"""Staff pages under /staff/webhooks/."""

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests.factories import UserFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import delivery_send, endpoint_create, endpoint_send_test

pytestmark = pytest.mark.django_db


def _perms(user, *codenames):
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="webhooks", codename__in=codenames)
    )


@pytest.fixture
def hook_admin(client):
    user = UserFactory(username="hookmaster", staff=True)
    _perms(user, "view_webhookendpoint", "change_webhookendpoint")
    client.force_login(user)
    return client


FORM = {
    "url": "http://127.0.0.1:9/hook",
    "description": "Discord #announcements",
    "event_types": ["award.granted", "tier.changed"],
    "format": "discord",
    "private_awards": "none",
}


def test_create_shows_the_secret_once(hook_admin):
    response = hook_admin.post("/staff/webhooks/", FORM)
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    assert endpoint.event_types == ["award.granted", "tier.changed"]
    assert endpoint.private_awards == "none"
    page = hook_admin.get("/staff/webhooks/").content.decode()
    assert endpoint.url in page
    assert endpoint.secret not in page
    assert endpoint.secret not in hook_admin.get(f"/staff/webhooks/{endpoint.pk}/").content.decode()


def test_invalid_endpoint_shows_errors_beside_fields_and_stores_nothing(hook_admin, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = hook_admin.post("/staff/webhooks/", {**FORM, "event_types": []})
    assert response.status_code == 422
    form = response.context["form"]
    assert "event_types" in form.errors
    response = hook_admin.post("/staff/webhooks/", FORM)
    assert response.status_code == 422
    assert "private or local" in " ".join(response.context["form"].errors["url"])
    assert not WebhookEndpoint.objects.exists()


def test_view_permission_alone_cannot_change(client):
    user = UserFactory(staff=True)
    _perms(user, "view_webhookendpoint")
    client.force_login(user)
    assert client.get("/staff/webhooks/").status_code == 200
    assert client.post("/staff/webhooks/", FORM).status_code == 403
    endpoint, _ = endpoint_create(url="http://127.0.0.1:9/h", event_types=["tier.changed"])
    assert client.post(f"/staff/webhooks/{endpoint.pk}/rotate").status_code == 403
    assert client.post(f"/staff/webhooks/{endpoint.pk}/test").status_code == 403


def test_pause_resume_rotate_and_test_event(hook_admin, receivers):
    receiver = receivers()
    endpoint, secret = endpoint_create(url=receiver.url, event_types=["tier.changed"])
    assert (
        hook_admin.post(f"/staff/webhooks/{endpoint.pk}/active", {"active": "0"}).status_code == 302
    )
    endpoint.refresh_from_db()
    assert not endpoint.active
    hook_admin.post(f"/staff/webhooks/{endpoint.pk}/active", {"active": "1"})
    endpoint.refresh_from_db()
    assert endpoint.active

    response = hook_admin.post(f"/staff/webhooks/{endpoint.pk}/rotate")
    endpoint.refresh_from_db()
    assert endpoint.secret != secret
    assert endpoint.previous_secret == secret
    assert endpoint.secret in response.content.decode()

    assert hook_admin.post(f"/staff/webhooks/{endpoint.pk}/test").status_code == 302
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    receiver.secret = endpoint.secret
    assert delivery_send(delivery_id=delivery.pk) == "delivered"
    assert receiver.received[0].verified
    page = hook_admin.get(f"/staff/webhooks/{endpoint.pk}/").content.decode()
    assert "webhook.test" in page
    assert "delivered" in page
    assert " ms" in page


def test_redeliver_a_dead_delivery(hook_admin):
    endpoint, _ = endpoint_create(url="http://127.0.0.1:9/h", event_types=["tier.changed"])
    delivery = endpoint_send_test(endpoint=endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state="dead", attempts=10)
    response = hook_admin.post(f"/staff/webhooks/deliveries/{delivery.pk}/redeliver")
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.state == "pending"
    assert delivery.attempts == 0


def test_detail_page_queries_do_not_grow_with_deliveries(hook_admin, django_assert_max_num_queries):
    endpoint, _ = endpoint_create(url="http://127.0.0.1:9/h", event_types=["tier.changed"])
    for _ in range(30):
        endpoint_send_test(endpoint=endpoint)
    # Session, user, permissions (2), endpoint, log.
    with django_assert_max_num_queries(7):
        assert hook_admin.get(f"/staff/webhooks/{endpoint.pk}/").status_code == 200
    with django_assert_max_num_queries(7):
        assert hook_admin.get("/staff/webhooks/").status_code == 200


def test_dashboard_counts_dead_deliveries(staff_client):
    endpoint, _ = endpoint_create(url="http://127.0.0.1:9/h", event_types=["tier.changed"])
    for _ in range(3):
        delivery = endpoint_send_test(endpoint=endpoint)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state="dead", attempts=10, last_attempt_at=timezone.now()
        )
    page = staff_client.get("/staff/").content.decode()
    assert "Dead webhook deliveries" in page
    assert "<dd>3</dd>" in page
