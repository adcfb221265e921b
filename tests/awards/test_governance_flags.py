"""Flags of unusual grants on /staff/: repeats, large grants, grants to new accounts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from awards.models import Award
from staff.selectors.flags import award_flags, percentile_points
from tests.awards.conftest import staff_with
from tests.factories import AwardFactory, UserFactory

pytestmark = pytest.mark.django_db

OLD = timezone.now() - timedelta(days=400)


@pytest.fixture
def heron(db):
    return staff_with("heron", "add_award")


def member(username):
    return UserFactory(username=username, date_joined=OLD)


def kinds(flags):
    return sorted((f.kind, f.granter, f.member) for f in flags)


def test_no_flags_for_ordinary_grants(heron):
    for index in range(30):
        AwardFactory(recipient=member(f"m{index}"), granted_by=heron, points=100)
    assert award_flags() == []


def test_same_granter_to_same_member_more_than_n_times_is_flagged(settings, heron):
    settings.AWARD_FLAG_REPEAT_COUNT = 3
    ada = member("ada")
    for _ in range(3):
        AwardFactory(recipient=ada, granted_by=heron, points=10)
    assert award_flags() == []
    AwardFactory(recipient=ada, granted_by=heron, points=10)
    (flag,) = award_flags()
    assert (flag.kind, flag.granter, flag.member, flag.points) == ("repeat", "heron", "ada", 40)
    assert flag.audit_url == "/staff/audit/?actor=heron&member=ada"
    # Older than 30 days does not count.
    Award.objects.update(created_at=timezone.now() - timedelta(days=31))
    assert award_flags() == []


def test_a_grant_above_the_95th_percentile_is_flagged(heron):
    for index in range(40):
        AwardFactory(recipient=member(f"m{index}"), granted_by=heron, points=100 + index)
    assert percentile_points() == 137  # rank ceil(0.95 * 40) = 38th of 100..139
    big = AwardFactory(recipient=member("ada"), granted_by=heron, points=5_000)
    assert percentile_points() == 138  # now the 39th of 41
    large = [f for f in award_flags() if f.kind == "large"]
    assert [f.award_id for f in large] == [big.pk, big.pk - 1]  # 5,000 and 139
    assert large[0].audit_url == f"/staff/audit/?object_type=award&object_id={big.pk}"


def test_too_few_awards_make_no_percentile(heron):
    for index in range(5):
        AwardFactory(recipient=member(f"m{index}"), granted_by=heron, points=10 * (index + 1))
    assert percentile_points() is None


def test_a_grant_to_an_account_younger_than_a_week_is_flagged(heron):
    fresh = UserFactory(username="fresh", date_joined=timezone.now() - timedelta(days=2))
    settled = UserFactory(username="settled", date_joined=timezone.now() - timedelta(days=8))
    AwardFactory(recipient=fresh, granted_by=heron, points=50)
    AwardFactory(recipient=settled, granted_by=heron, points=50)
    assert kinds(award_flags()) == [("new_account", "heron", "fresh")]


def test_flags_show_on_the_dashboard_panel_with_audit_links(client, heron):
    fresh = UserFactory(username="fresh", date_joined=timezone.now())
    award = AwardFactory(recipient=fresh, granted_by=heron, points=50)
    client.force_login(heron)
    html = client.get("/staff/governance", headers={"HX-Request": "true"}).content.decode()
    assert "new account" in html
    assert f"/staff/audit/?object_type=award&amp;object_id={award.pk}" in html
    dashboard = client.get("/staff/").content.decode()
    assert 'hx-get="/staff/governance"' in dashboard


def test_governance_panel_query_count_does_not_grow(client, heron, django_assert_max_num_queries):
    for index in range(40):
        AwardFactory(recipient=member(f"m{index}"), granted_by=heron, points=100 + index)
    client.force_login(heron)
    # Session, user, permissions (2), pending requests, totals, repeats, percentile (2),
    # large, new accounts.
    with django_assert_max_num_queries(11):
        assert client.get("/staff/governance").status_code == 200
