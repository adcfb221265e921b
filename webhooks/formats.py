"""What a delivery's body looks like: the JSON event (SPEC §10) or a Discord message.

Discord announces tier-ups and awards only (a revocation or a tier going down is not news
for a channel); a private award is announced with its points only, or not at all, as the
endpoint chooses. A grant that lifted the member into a new tier is one message
("**bogwitch** reached **Murk Lurker** (tier 2) — award: Keynote at Swamp Summit 2026,
+20,000"), so an endpoint subscribed to both ``award.granted`` and ``tier.changed`` does not
announce that tier-up twice.
"""

import re
from datetime import datetime
from typing import Any

from scoring.models import OutboxEvent
from webhooks.models import WebhookEndpoint

TEST_EVENT_TYPE = "webhook.test"  # the staff page's "send a test event"
# Discord's embed colour for announcements (the site's swamp green).
DISCORD_COLOUR = 0x4E7A3A
_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]()-])")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event_body(*, event_type: str, occurred_at: datetime, payload: dict[str, Any]) -> dict:
    """The JSON format's body: ``{"type", "timestamp", "data"}``."""
    return {"type": event_type, "timestamp": _iso(occurred_at), "data": payload}


def _md(text: str) -> str:
    """Text safe inside a Discord message: markdown characters escaped, no mass mention."""
    flat = " ".join(text.split())  # one line: no headings or quotes from newlines
    return _MARKDOWN.sub(r"\\\1", flat).replace("@", "@\u200b")


def _tier(tier: dict) -> str:
    return f"**{_md(tier['name'])}** (tier {tier['ordinal']})"


def _award_text(payload: dict, *, announce_private: bool) -> str | None:
    points = f"+{payload['points']:,}"
    if payload.get("reason") is not None:
        return f"{_md(payload['reason'])}, {points}"
    return points if announce_private else None


def discord_text(
    *, event_type: str, payload: dict, context: dict, endpoint: "WebhookEndpoint"
) -> str | None:
    """The Discord message text for an event, or ``None`` when it is not announced."""
    user = f"**{_md(payload['username'])}**"
    announce_private = endpoint.private_awards == endpoint.PrivateAwards.POINTS
    if event_type == OutboxEvent.Type.AWARD_GRANTED:
        award = _award_text(payload, announce_private=announce_private)
        from_tier = context.get("from_tier")
        if from_tier is not None and payload["tier"]["ordinal"] > from_tier:
            reached = f"{user} reached {_tier(payload['tier'])}"
            return f"{reached} — award: {award}" if award else reached
        if award is None:
            return None
        return f"{user} received an award: {award}"
    if event_type == OutboxEvent.Type.TIER_CHANGED:
        if payload["to"]["ordinal"] <= payload["from"]["ordinal"]:
            return None
        if payload["cause"] == "award" and OutboxEvent.Type.AWARD_GRANTED in endpoint.event_types:
            return None  # the award's own message says it
        return f"{user} reached {_tier(payload['to'])}"
    if event_type == TEST_EVENT_TYPE:
        return "Test message from Swamp Club: this channel will receive announcements."
    return None


def discord_body(text: str) -> dict:
    """A Discord webhook body with one embed; mentions are never pinged."""
    return {
        "embeds": [{"description": text, "color": DISCORD_COLOUR}],
        "allowed_mentions": {"parse": []},
    }
