"""A member's walk: leaderboard → profile → "load more" award history, in real Chromium.

Also saves the screenshots in docs/screenshots/ used by the documentation.
"""

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from scoring.tiers import tier_for_total, tiers_all
from tests.factories import (
    AwardFactory,
    AwardRevocationFactory,
    MemberMetricsFactory,
    ScoreHistoryFactory,
    TierBadgeClaimFactory,
    UserFactory,
    UserScoreFactory,
)

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs Chromium at {CHROMIUM}"),
]


@pytest.fixture
def swamp_data(settings):
    """A board of members; "marshking" has history, badges, activity and 30 awards."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    now = timezone.now()
    for i in range(12):
        total = 5_000 + i * 7_919
        member = UserFactory(username=f"operative{i:02d}")
        UserScoreFactory(member=member, activity_score=total, tier=tier_for_total(total).ordinal)
    king = UserFactory(username="marshking")
    for i, (days, total) in enumerate([(300, 12_000), (200, 48_000), (90, 71_000), (20, 160_000)]):
        ScoreHistoryFactory(
            member=king, recorded_at=now - timedelta(days=days, hours=i), total_score=total
        )
    awards = []
    for i in range(30):
        awards.append(
            AwardFactory(
                recipient=king,
                points=100 + i,
                reason=f"Guided newcomers through the bog, week {30 - i}",
                category=["community", "content", "event", "bug_report"][i % 4],
                public=i % 7 != 3,
                staff_note="internal: verified by the wardens",
                granted_at=now - timedelta(days=i * 3),
            )
        )
    AwardRevocationFactory(award=awards[1])
    counted = sum(a.points for a in awards) - awards[1].points
    UserScoreFactory(
        member=king,
        activity_score=160_000 - counted,
        award_points=counted,
        tier=tier_for_total(160_000).ordinal,
        streak_days=9,
        active_days=120,
    )
    today = now.date()
    MemberMetricsFactory(
        member=king,
        active_dates=sorted(
            str(today - timedelta(days=d)) for d in range(0, 365) if d % 3 == 0 or d < 9
        ),
    )
    for tier in tiers_all()[: tier_for_total(160_000).ordinal]:
        TierBadgeClaimFactory(
            member=king,
            tier=tier.ordinal,
            claimed_at=now - timedelta(days=300 - tier.ordinal * 40),
            total_at_claim=tier.floor + 1_234,
        )
    return king


@pytest.fixture
def chromium_page(live_server, swamp_data, monkeypatch):
    """A Chromium page (Playwright) and a list collecting console errors."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the data is already written,
    # and Django's guard against ORM calls from async code would trip on teardown's flush.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []

        def on_console(msg):
            # The browser's own favicon probe 404s; the site has no favicon.
            if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
                errors.append(msg.text)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, errors
        browser.close()


def test_leaderboard_to_profile_and_load_more_history(live_server, chromium_page):
    page, errors = chromium_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{live_server.url}/leaderboard/")
    rows = page.locator("table.board tbody tr")
    assert rows.count() == 13
    assert rows.first.locator("td").nth(1).inner_text() == "marshking"
    page.screenshot(path=str(SCREENSHOTS / "leaderboard.png"), full_page=True)

    page.get_by_role("link", name="marshking").click()
    page.wait_for_url(f"{live_server.url}/u/marshking/")
    assert page.get_by_role("heading", level=1).inner_text() == "marshking"
    assert page.locator('[data-part="total"]').inner_text() == "= 160,000"
    assert page.locator("svg.heatmap rect.hm-on").count() > 100
    assert page.locator("svg.chart polyline.score-line").count() == 1
    history = page.locator("tr.award-row")
    assert history.count() == 20
    page.screenshot(path=str(SCREENSHOTS / "profile.png"), full_page=True)

    page.get_by_role("link", name="Load more").click()
    history.nth(29).wait_for()
    assert history.count() == 30
    assert page.get_by_role("link", name="Load more").count() == 0
    # htmx swapped the rows in place: still the first page's address, no navigation.
    assert page.url == f"{live_server.url}/u/marshking/"
    assert "Guided newcomers through the bog, week 1" in history.nth(29).inner_text()
    text = page.locator("#award-history").inner_text()
    assert "Private award" in text
    assert "internal: verified" not in text
    assert page.locator("tr.award-row.is-revoked").count() == 1
    # Nothing blocked by the content security policy, no script errors.
    assert errors == []
    assert os.path.getsize(SCREENSHOTS / "profile.png") > 10_000
