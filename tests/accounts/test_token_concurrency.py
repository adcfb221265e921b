"""A sign-in token spent by many requests at once gives exactly one key (PostgreSQL)."""

import pytest
from django.db import connection

from accounts.models import CliSignInToken
from accounts.services import SignInTokenInvalid, cli_token_issue, cli_token_redeem
from scoring.models import ApiKey
from tests.awards.test_concurrency import run_together
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serializes every writer, so nothing races",
    ),
]


def test_a_token_spent_concurrently_creates_one_key():
    member = UserFactory(password=None)
    token = cli_token_issue(member=member, via=CliSignInToken.Via.PASSWORD)

    def spend(n: int):
        def work():
            try:
                return cli_token_redeem(token=token, name=f"cli-race-{n}")[0].pk
            except SignInTokenInvalid:
                return None

        return work

    results = run_together([spend(n) for n in range(6)])
    assert len([r for r in results if r is not None]) == 1
    assert ApiKey.objects.filter(owner=member).count() == 1
