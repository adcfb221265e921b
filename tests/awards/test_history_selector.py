"""The one reader of a member's award history: what each viewer sees of a private award."""

import pytest
from django.contrib.auth.models import AnonymousUser

from awards.selectors import award_details_visible, award_history_for_member
from awards.services import award_grant, award_revoke
from tests.awards.conftest import staff_with
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(granter):
    member = UserFactory(username="frog")
    public = award_grant(
        recipient=member,
        points=5,
        reason="Public reason",
        idempotency_key="public",
        granted_by=granter,
        source="form",
        category="event",
    ).award
    private = award_grant(
        recipient=member,
        points=7,
        reason="Private reason",
        idempotency_key="private",
        granted_by=granter,
        source="form",
        category="bug_report",
        public=False,
        staff_note="Only for staff",
    ).award
    award_revoke(award=private, revoked_by=granter, reason="Counted twice")
    return member, public, private


def _by_id(rows):
    return {row.id: row for row in rows}


def test_others_see_only_points_and_date_of_a_private_award(history):
    member, public, private = history
    for viewer in (None, AnonymousUser(), UserFactory(username="nosy"), staff_with("clerk")):
        rows = _by_id(award_history_for_member(member=member, viewer=viewer))
        assert (rows[public.pk].reason, rows[public.pk].category) == ("Public reason", "event")
        hidden = rows[private.pk]
        assert (hidden.points, hidden.reason, hidden.category, hidden.category_label) == (
            7,
            None,
            None,
            None,
        )
        assert hidden.revoked
        assert hidden.revocation_reason is None
        assert hidden.staff_note is None


def test_recipient_and_private_text_staff_see_private_details(history):
    member, _, private = history
    for viewer in (member, staff_with("reader", "view_award")):
        row = _by_id(award_history_for_member(member=member, viewer=viewer))[private.pk]
        assert (row.reason, row.category, row.category_label) == (
            "Private reason",
            "bug_report",
            "Bug report",
        )
        assert row.revocation_reason == "Counted twice"
        assert row.staff_note is None  # staff fields only when asked for


def test_staff_fields_are_opt_in_and_the_note_needs_the_permission(history, granter):
    member, public, private = history
    reader = staff_with("reader", "view_award")
    rows = _by_id(award_history_for_member(member=member, viewer=reader, staff_fields=True))
    assert rows[private.pk].staff_note == "Only for staff"
    assert rows[private.pk].granted_by_username == granter.username
    assert rows[private.pk].revoked_by_username == granter.username
    assert rows[public.pk].source == "form"
    clerk = staff_with("clerk")
    rows = _by_id(award_history_for_member(member=member, viewer=clerk, staff_fields=True))
    assert rows[private.pk].staff_note is None
    assert rows[private.pk].reason is None
    assert rows[private.pk].granted_by_username == granter.username


def test_the_json_contract_gives_a_private_category_code_only(history):
    member, _, private = history
    row = _by_id(award_history_for_member(member=member, viewer=None, category_given=True))[
        private.pk
    ]
    assert (row.reason, row.category, row.category_label) == (None, "bug_report", None)


def test_slices_newest_first_in_one_query(history, django_assert_num_queries):
    member, public, private = history
    with django_assert_num_queries(1):
        rows = award_history_for_member(member=member, viewer=None, offset=0, limit=1)
    assert [row.id for row in rows] == [private.pk]
    assert [r.id for r in award_history_for_member(member=member, viewer=None, offset=1)] == [
        public.pk
    ]


def test_details_rule_in_one_function(history):
    member, _, _ = history
    assert award_details_visible(public=True, recipient_id=member.pk, viewer=None)
    assert not award_details_visible(public=False, recipient_id=member.pk, viewer=None)
    assert award_details_visible(public=False, recipient_id=member.pk, viewer=member)
