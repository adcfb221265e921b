"""Fixtures for the member pages: board members with scores and history."""

import pytest
from django.utils import timezone

from scoring.tiers import tier_for_total
from tests.factories import ScoreHistoryFactory, UserFactory, UserScoreFactory


@pytest.fixture
def make_member(db):
    """Create a member with a UserScore of ``total`` and ScoreHistory rows ``history``.

    ``history`` is a list of (recorded_at, total) pairs; the current total should normally
    equal the last history row's total, as the score pipeline would leave it.
    """

    def make(username, total, *, staff=False, awards=0, history=()):
        user = UserFactory(username=username, is_staff=staff)
        UserScoreFactory(
            member=user,
            activity_score=total - awards,
            award_points=awards,
            total_score=total,
            tier=tier_for_total(total).ordinal,
            computed_at=timezone.now(),
        )
        for recorded_at, value in history:
            ScoreHistoryFactory(
                member=user,
                recorded_at=recorded_at,
                total_score=value,
                tier=tier_for_total(value).ordinal,
            )
        return user

    return make


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Factories set a password for every member; a fast hasher keeps big boards quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
