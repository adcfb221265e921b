"""URL rules (at save and at send) and the Discord format."""

import socket

import pytest
from django.core.exceptions import ValidationError

from awards.services import award_grant
from tests.webhooks.helpers import drain
from webhooks.formats import discord_text
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import delivery_send, endpoint_create, events_dispatch

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_and_local_urls_are_refused_at_save(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with pytest.raises(ValidationError) as caught:
        endpoint_create(url=url, event_types=["award.granted"])
    assert "url" in caught.value.message_dict
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("ftp://93.184.215.14/hook", "url"),
        ("https://user:pw@93.184.215.14/hook", "url"),
        ("not a url", "url"),
    ],
)
def test_malformed_urls_are_refused(url, field):
    with pytest.raises(ValidationError) as caught:
        endpoint_create(url=url, event_types=["award.granted"])
    assert field in caught.value.message_dict


def test_event_types_and_format_are_checked():
    with pytest.raises(ValidationError) as caught:
        endpoint_create(url="https://93.184.215.14/h", event_types=["award.eaten"], format="xml")
    assert set(caught.value.message_dict) == {"event_types", "format"}


def test_https_is_required_in_production(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    settings.WEBHOOK_REQUIRE_HTTPS = True
    with pytest.raises(ValidationError):
        endpoint_create(url="http://93.184.215.14/hook", event_types=["award.granted"])
    endpoint, _ = endpoint_create(url="https://93.184.215.14/hook", event_types=["award.granted"])
    assert endpoint.pk


def test_send_time_check_defeats_dns_rebinding(settings, monkeypatch, receivers, member, granter):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    receiver = receivers()
    answers = {"hooks.example.test": "93.184.215.14"}
    real = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    endpoint, _ = endpoint_create(
        url=f"http://hooks.example.test:{receiver.port}/hook", event_types=["award.granted"]
    )
    # After the check at save the name is re-pointed at the loopback receiver.
    answers["hooks.example.test"] = "127.0.0.1"
    award_grant(
        recipient=member,
        points=10,
        reason="Bog cleanup",
        idempotency_key="k",
        granted_by=granter,
        source="form",
    )
    events_dispatch()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery_send(delivery_id=delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert "private or local" in delivery.last_error
    assert receiver.received == []


def _endpoint(**options):
    return WebhookEndpoint(
        url="https://discord.example/api/webhooks/1/x",
        format="discord",
        event_types=options.pop("event_types", ["award.granted", "tier.changed"]),
        **options,
    )


AWARD = {
    "award_id": 7,
    "username": "bogwitch",
    "points": 20_000,
    "reason": "Keynote at Swamp Summit 2026",
    "category": "event",
    "total_score": 20_500,
    "tier": {"ordinal": 2, "name": "Murk Lurker"},
}


def test_discord_award_that_reaches_a_tier_is_one_message():
    text = discord_text(
        event_type="award.granted", payload=AWARD, context={"from_tier": 1}, endpoint=_endpoint()
    )
    assert text == (
        "**bogwitch** reached **Murk Lurker** (tier 2) — award: Keynote at Swamp Summit 2026, "
        "+20,000"
    )
    change = {
        "username": "bogwitch",
        "from": {"ordinal": 1, "name": "Sludge Whelp"},
        "to": {"ordinal": 2, "name": "Murk Lurker"},
        "cause": "award",
        "total_score": 20_500,
    }
    # Said once: the award's message carries the tier-up...
    assert (
        discord_text(event_type="tier.changed", payload=change, context={}, endpoint=_endpoint())
        is None
    )
    # ...unless the endpoint only listens to tier changes.
    only_tiers = _endpoint(event_types=["tier.changed"])
    assert (
        discord_text(event_type="tier.changed", payload=change, context={}, endpoint=only_tiers)
        == "**bogwitch** reached **Murk Lurker** (tier 2)"
    )


def test_discord_private_award_points_only_or_nothing():
    private = {**AWARD, "reason": None}
    assert (
        discord_text(event_type="award.granted", payload=private, context={}, endpoint=_endpoint())
        == "**bogwitch** received an award: +20,000"
    )
    silent = _endpoint(private_awards="none")
    assert (
        discord_text(event_type="award.granted", payload=private, context={}, endpoint=silent)
        is None
    )
    # A tier reached through a private award is still announced, without the award.
    assert (
        discord_text(
            event_type="award.granted", payload=private, context={"from_tier": 1}, endpoint=silent
        )
        == "**bogwitch** reached **Murk Lurker** (tier 2)"
    )


def test_discord_does_not_announce_tier_downs_or_revocations():
    down = {
        "username": "bogwitch",
        "from": {"ordinal": 2, "name": "Murk Lurker"},
        "to": {"ordinal": 1, "name": "Sludge Whelp"},
        "cause": "revocation",
        "total_score": 0,
    }
    assert (
        discord_text(event_type="tier.changed", payload=down, context={}, endpoint=_endpoint())
        is None
    )
    revoked = {k: AWARD[k] for k in ("award_id", "username", "points", "total_score", "tier")}
    assert (
        discord_text(event_type="award.revoked", payload=revoked, context={}, endpoint=_endpoint())
        is None
    )


def test_discord_text_is_escaped_and_never_pings():
    sneaky = {**AWARD, "reason": "@everyone **free** points", "username": "bog_witch"}
    text = discord_text(
        event_type="award.granted", payload=sneaky, context={}, endpoint=_endpoint()
    )
    assert "@everyone" not in text
    assert "\\*\\*free\\*\\*" in text
    assert "**bog\\_witch**" in text


def test_discord_endpoint_receives_an_embed(receivers, member, granter):
    receiver = receivers()
    _, secret = endpoint_create(
        url=receiver.url, event_types=["award.granted", "tier.changed"], format="discord"
    )
    receiver.secret = secret
    member.username = "bogwitch"
    member.save()
    award_grant(
        recipient=member,
        points=20_000,
        reason="Keynote at Swamp Summit 2026",
        idempotency_key="summit",
        granted_by=granter,
        source="form",
    )
    drain()
    (got,) = receiver.received  # the tier-up rides in the award's message
    assert got.verified
    assert got.payload["allowed_mentions"] == {"parse": []}
    assert got.payload["embeds"][0]["description"] == (
        "**bogwitch** reached **Murk Lurker** (tier 2) — award: Keynote at Swamp Summit 2026, "
        "+20,000"
    )
