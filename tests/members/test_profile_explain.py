"""The profile's "How this score is made" section."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from awards.services import award_grant, award_revoke
from scoring.models import MemberMetrics, UserScore
from scoring.scores import scores_refresh
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _grant(member, points, *, public=True, key="k", reason=None):
    return award_grant(
        recipient=member,
        points=points,
        reason=reason or f"Reason for {key}",
        idempotency_key=key,
        granted_by=None,
        source="form",
        public=public,
    ).award


@pytest.fixture
def scored(member):
    today = timezone.now().date()
    MemberMetrics.objects.create(
        member=member,
        event_counts={"model": 30, "workflow": 120, "data": 5},
        active_dates=[(today - timedelta(days=i)).isoformat() for i in range(5)],
        total_events=155,
    )
    scores_refresh(member_ids=[member.pk], as_of=today)
    return member


def _section(html: str) -> str:
    match = re.search(r'<details class="card explain".*?</details>', html, re.S)
    assert match, "no explanation section"
    return match.group(0)


def test_section_is_closed_by_default_and_adds_up_to_the_stored_total(client, scored):
    _grant(scored, 250, key="a", reason="Wrote the fen guide")
    html = client.get(f"/u/{scored.username}/").content.decode()
    section = _section(html)
    assert "<details" in section
    assert " open" not in section.split(">", 1)[0]
    assert "How this score is made" in section
    assert "Scoring rules version 1" in section
    # The worked example: workflow capped at 1,000 (cut 200), 27/25 and 13/12, floor 1755.
    assert "capped at 1,000 (cut 200)" in section
    assert "\u00d7 1.08" in section
    assert "\u00d7 13/12" in section
    assert 'data-part="explain-activity">1,755<' in section
    assert "Wrote the fen guide" in section
    total = UserScore.objects.get(member=scored).total_score
    assert total == 2005
    assert f'data-part="explain-total">= {total:,}<' in section


def test_revoked_awards_are_struck_through_and_private_reasons_hidden(client, scored):
    revoked = _grant(scored, 900, key="r", reason="A mistaken grant")
    award_revoke(award=revoked, revoked_by=None, reason="granted by mistake")
    _grant(scored, 70, public=False, key="p", reason="Quiet help in the bog")
    client.force_login(UserFactory())
    section = _section(client.get(f"/u/{scored.username}/").content.decode())
    assert "<del>+ 900</del>" in section
    assert "Quiet help in the bog" not in section
    assert "private award" in section
    assert 'data-part="explain-total">= 1,825<' in section  # 1755 + 70


def test_the_member_sees_their_own_private_reason(client, scored):
    _grant(scored, 70, public=False, key="p", reason="Quiet help in the bog")
    client.force_login(scored)
    html = client.get(f"/u/{scored.username}/").content.decode()
    assert "Quiet help in the bog" in _section(html)
