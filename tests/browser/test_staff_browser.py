"""Staff flows clicked through in Chromium: grant with search and preview, double submit,
revoke with confirmation, inline validation, bulk upload, session expiry; screenshots.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from awards.models import Award, AwardRevocation
from awards.services import award_grant
from scoring.models import ApiKey, MemberMetrics, PipelineRun, TierChange, UserScore
from tests.browser.conftest import login, screenshot
from tests.factories import TelemetryEventFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def warden(db):
    """A staff member with the rights to view, grant and revoke awards."""
    user = UserFactory(username="warden", staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["add_award", "add_awardrevocation", "view_award", "add_apikey"]
        )
    )
    return user


@pytest.fixture
def bogwalker(warden):
    """A member 100 points short of Murk Lurker (tier 2 at 20,000)."""
    member = UserFactory(username="bogwalker")
    heron = UserFactory(username="heron", staff=True)
    award_grant(
        recipient=member,
        points=19_900,
        reason="Organised the winter cleanup",
        idempotency_key="winter",
        granted_by=heron,
        source="form",
        category="event",
    )
    UserFactory(username="bogrunner")
    return member


def mark_page(page) -> None:
    """Set a flag in the page's JS state; it survives only if the page never reloads."""
    page.evaluate("window.__stillHere = true")


def still_same_page(page) -> bool:
    return page.evaluate("window.__stillHere === true")


def test_grant_with_search_preview_and_panels_updating_without_reload(
    browser_page, browser_errors, warden, bogwalker
):
    page = browser_page
    login(page, warden)
    page.goto("/staff/awards/new")
    mark_page(page)

    # Search as you type, then pick a member from the list with the keyboard.
    page.get_by_label("Member", exact=True).press_sequentially("bogw", delay=40)
    pick = page.locator("[data-pick-username='bogwalker']")
    pick.wait_for()
    assert page.locator("[data-pick-username]").count() == 1
    page.get_by_label("Member", exact=True).press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.pickUsername") == "bogwalker"
    page.keyboard.press("Enter")
    assert page.get_by_label("Member", exact=True).input_value() == "bogwalker"
    # Picking moves focus to the points field.
    assert page.evaluate("document.activeElement.name") == "points"

    # The preview shows the current total, the new total and the tier reached.
    page.keyboard.type("250")
    preview = page.locator("#grant-preview-panel")
    preview.get_by_text("20,150").wait_for()
    assert "19,900" in preview.inner_text()
    assert "Reaches Murk Lurker" in preview.inner_text()

    page.get_by_label("Reason", exact=True).fill("Mapped the northern marsh trails")
    page.get_by_label("Category", exact=True).select_option("content")
    page.get_by_role("button", name="Grant award").click()

    status = page.locator("#grant-form [role='status']")
    status.wait_for()
    assert "Granted 250 points to bogwalker" in status.inner_text()
    assert "Murk Lurker" in status.inner_text()
    # The form is emptied, focus is on the status line, and the latest-awards panel
    # reloaded itself on "award-granted" — all without a page load.
    assert page.get_by_label("Member", exact=True).input_value() == ""
    assert page.get_by_label("Points", exact=True).input_value() == ""
    assert page.evaluate("document.activeElement.getAttribute('role')") == "status"
    page.locator("#recent-awards").get_by_text("Mapped the northern marsh trails").wait_for()
    assert still_same_page(page)
    assert page.url.endswith("/staff/awards/new")

    award = Award.objects.get(reason="Mapped the northern marsh trails")
    assert (award.points, award.category, award.granted_by, award.source) == (
        250,
        "content",
        warden,
        "form",
    )
    assert UserScore.objects.get(member=bogwalker).total_score == 20_150
    assert TierChange.objects.filter(member=bogwalker, to_tier=2).count() == 1
    assert browser_errors == []


def test_member_page_history_updates_after_grant_and_double_click_grants_once(
    browser_page, browser_errors, warden, bogwalker
):
    page = browser_page
    login(page, warden)
    page.goto("/staff/members/bogwalker/")
    mark_page(page)
    grant = page.locator("#grant-form")
    rows = page.locator("#award-history tbody tr")
    assert rows.count() == 1
    assert grant.get_by_label("Member", exact=True).input_value() == "bogwalker"

    grant.get_by_label("Points", exact=True).fill("40")
    grant.get_by_label("Reason", exact=True).fill("Answered forty questions in the forum")
    grant.get_by_label("Staff note", exact=True).fill("Counted by hand")
    grant.get_by_role("button", name="Grant award").dblclick()

    page.locator("#award-history").get_by_text("Answered forty questions in the forum").wait_for()
    page.locator("#grant-form [role='status']").wait_for()
    assert rows.count() == 2
    assert "Counted by hand" in rows.first.inner_text()
    page.locator("#member-score").get_by_text("19,940").first.wait_for()
    # The form keeps the member and is ready for the next grant with a new key.
    assert grant.get_by_label("Member", exact=True).input_value() == "bogwalker"
    assert still_same_page(page)
    assert Award.objects.filter(reason="Answered forty questions in the forum").count() == 1
    assert MemberMetrics.objects.get(member=bogwalker).award_points == 19_940
    assert browser_errors == []


def test_revoke_from_a_row_asks_for_confirmation_and_a_reason(
    browser_page, browser_errors, warden, bogwalker
):
    page = browser_page
    login(page, warden)
    page.goto("/staff/members/bogwalker/")
    mark_page(page)
    award = Award.objects.get(recipient=bogwalker)
    row = page.locator(f"#award-{award.pk}")
    row.get_by_text("Revoke…").click()
    asked: list[str] = []
    answer = {"accept": False}

    def on_dialog(dialog) -> None:
        asked.append(dialog.message)
        if answer["accept"]:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)
    row.get_by_label("Reason", exact=True).fill("Counted twice with the spring cleanup")
    # Dismissing the confirmation sends nothing.
    with page.expect_event("dialog"):
        row.get_by_role("button", name="Revoke award").click()
    assert "Revoke 19,900 points from bogwalker?" in asked[0]
    page.wait_for_load_state("networkidle")
    assert not AwardRevocation.objects.exists()

    # An empty reason is refused beside the field, in the row.
    answer["accept"] = True
    row.get_by_label("Reason", exact=True).fill("")
    row.get_by_role("button", name="Revoke award").click()
    row.locator(".errorlist").wait_for()
    assert row.get_by_label("Reason", exact=True).get_attribute("aria-invalid") == "true"
    assert not AwardRevocation.objects.exists()

    row.get_by_label("Reason", exact=True).fill("Counted twice with the spring cleanup")
    row.get_by_role("button", name="Revoke award").click()
    status = page.locator("#history-status")
    status.get_by_text("revoked").wait_for()
    revoked_row = page.locator(f"#award-{award.pk}")
    revoked_row.get_by_text("Counted twice with the spring cleanup").wait_for()
    assert "warden" in revoked_row.inner_text()
    assert revoked_row.get_by_role("button", name="Revoke award").count() == 0
    page.locator("#member-score .tier-badge").get_by_text("Sludge Whelp").wait_for()
    assert still_same_page(page)
    assert AwardRevocation.objects.get().reason == "Counted twice with the spring cleanup"
    assert UserScore.objects.get(member=bogwalker).total_score == 0
    assert browser_errors == []


def test_inline_validation_marks_the_field_as_the_user_leaves_it(
    browser_page, browser_errors, warden, bogwalker
):
    page = browser_page
    login(page, warden)
    page.goto("/staff/awards/new")
    points = page.get_by_label("Points", exact=True)
    points.fill("0")
    points.press("Tab")
    error = page.locator("#field-points .errorlist")
    error.wait_for()
    assert "greater than or equal to 1" in error.inner_text()
    assert page.get_by_label("Points", exact=True).get_attribute("aria-invalid") == "true"
    # Focus went on to the next field, not back to the invalid one.
    assert page.evaluate("document.activeElement.name") != "points"
    page.get_by_label("Points", exact=True).fill("5")
    page.get_by_label("Points", exact=True).press("Tab")
    page.locator("#field-points .errorlist").wait_for(state="detached")
    # Submitting the incomplete form shows every error beside its field (a 422 swap).
    page.get_by_role("button", name="Grant award").click()
    page.locator("#field-reason .errorlist").wait_for()
    assert page.evaluate("document.activeElement.getAttribute('aria-invalid')") == "true"
    assert not Award.objects.exclude(reason="Organised the winter cleanup").exists()
    assert browser_errors == []


def test_bulk_upload_dry_run_then_confirm(
    browser_page, browser_errors, warden, bogwalker, tmp_path
):
    page = browser_page
    login(page, warden)
    page.goto("/staff/awards/bulk")
    csv_file = tmp_path / "spring.csv"
    csv_file.write_text(
        "username,points,reason,category\n"
        "bogwalker,300,Led the frog census,event\n"
        "bogrunner,50,Helped at the census stand,community\n"
    )
    page.get_by_label("CSV file", exact=True).set_input_files(str(csv_file))
    page.get_by_role("button", name="Check file").click()
    report = page.locator(".bulk-report")
    report.wait_for()
    text = report.inner_text()
    assert "Murk Lurker" in text  # bogwalker's tier would change
    assert not Award.objects.filter(source="bulk").exists()
    page.get_by_role("button", name=re.compile(r"Grant 2 awards \(350 points\)")).click()
    page.locator("#bulk-job").get_by_text("2 awards granted").wait_for()
    assert Award.objects.filter(source="bulk").count() == 2
    # The same file again: nothing new to grant.
    page.get_by_role("link", name="Upload another file").click()
    page.get_by_label("CSV file", exact=True).set_input_files(str(csv_file))
    page.get_by_role("button", name="Check file").click()
    page.get_by_text("every row is already granted").wait_for()
    assert Award.objects.filter(source="bulk").count() == 2
    assert browser_errors == []


def test_expired_session_during_htmx_request_goes_to_login(
    browser_page, browser_errors, warden, bogwalker
):
    page = browser_page
    login(page, warden)
    page.goto("/staff/awards/new")
    # The session ends; the CSRF cookie stays, as it does when a session expires.
    page.context.clear_cookies(name="sessionid")
    page.get_by_label("Points", exact=True).fill("10")
    page.get_by_label("Points", exact=True).press("Tab")  # an htmx validation request
    # The whole page goes to the login form, which brings the user back to this page.
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/staff/awards/new$"))
    assert page.get_by_role("heading", name="Log in").is_visible()
    assert page.locator("#grant-form").count() == 0


def test_screenshots_of_the_main_staff_pages(browser_page, browser_errors, warden, bogwalker):
    page = browser_page
    now = timezone.now()
    metrics = MemberMetrics.objects.get(member=bogwalker)
    metrics.event_counts = {"model": 42, "workflow": 130, "data": 12, "vault": 4}
    metrics.active_dates = sorted(
        (now.date() - timedelta(days=d)).isoformat() for d in range(0, 300) if d % 4 == 0 or d < 6
    )
    metrics.total_events = 188
    metrics.save()
    for kind in ("consume", "score_batch", "worker"):
        PipelineRun.objects.create(
            kind=kind, last_started_at=now, last_finished_at=now, last_count=12, runs=340
        )
    TelemetryEventFactory.create_batch(3, member=bogwalker)
    award_grant(
        recipient=bogwalker,
        points=250,
        reason="Mapped the northern marsh trails",
        idempotency_key="trails",
        granted_by=warden,
        source="form",
        category="content",
    )
    login(page, warden)
    pages = {
        "staff-dashboard": ("/staff/", "Pipeline health"),
        "staff-grant": ("/staff/awards/new", "Grant an award"),
        "staff-member": ("/staff/members/bogwalker/", "Award history"),
    }
    for name, (url, heading) in pages.items():
        page.goto(url)
        assert page.get_by_role("heading", name=heading).first.is_visible()
        if name == "staff-grant":
            page.get_by_label("Member", exact=True).fill("bogwalker")
            page.get_by_label("Points", exact=True).fill("500")
            page.get_by_label("Points", exact=True).press("Tab")
            expected = UserScore.objects.get(member=bogwalker).total_score + 500
            page.locator("#grant-preview-panel").get_by_text(f"{expected:,}").wait_for()
        path = screenshot(page, name)
        assert path.stat().st_size > 10_000
    assert browser_errors == []


def test_api_key_created_shown_once_listed_and_revoked(browser_page, browser_errors, warden):
    page = browser_page
    UserFactory(username="cibot")
    login(page, warden)
    page.goto("/staff/api-keys/")
    mark_page(page)
    page.get_by_label("Owner", exact=True).press_sequentially("cib", delay=40)
    page.locator("[data-pick-username='cibot']").click()
    assert page.get_by_label("Owner", exact=True).input_value() == "cibot"
    page.get_by_label("Name", exact=True).fill("build server")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Key", exact=True)
    secret.wait_for()
    plaintext = secret.input_value()
    assert re.fullmatch(r"swamp_[0-9a-f]{32}", plaintext)
    row = page.locator("#key-list tbody tr").filter(has_text="cibot")
    row.wait_for()  # the list reloaded itself on "api-key-created"
    assert "build server" in row.inner_text()
    assert plaintext not in page.locator("#key-list").inner_html()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    row.locator(".badge-revoked").wait_for()
    assert still_same_page(page)
    assert ApiKey.objects.get().revoked_at is not None
    assert browser_errors == []
