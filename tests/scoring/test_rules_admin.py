"""Rules versions in the admin: added there, never edited or deleted."""

import pytest

from scoring.models import ScoringRules
from scoring.rules import rules_get, rules_in_force
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_a_new_version_is_added_but_not_put_in_force(admin_client):
    rules_get(version=1)
    response = admin_client.post(
        "/admin/scoring/scoringrules/add/",
        {
            "version": "2",
            "base_points": "12",
            "group_cap": "1000",
            "group_caps": "{}",
            "diversity_bonus": "50",
            "streak_step": "0.02",
            "streak_max": "1.5",
            "rolling_bonus": "0.5",
            "rolling_days": "30",
            "note": "more per event",
        },
    )
    assert response.status_code == 302
    assert ScoringRules.objects.get(version=2).activated_at is None
    assert rules_in_force().version == 1


def test_a_saved_version_cannot_be_edited_or_deleted(admin_client):
    rules = rules_get(version=1)
    url = f"/admin/scoring/scoringrules/{rules.pk}/change/"
    assert admin_client.post(url, {"base_points": "99"}).status_code == 403
    assert admin_client.post(f"/admin/scoring/scoringrules/{rules.pk}/delete/").status_code == 403
    rules.refresh_from_db()
    assert rules.base_points == 10
