"""``seed_demo`` grants its demo awards through the award service, once."""

from io import StringIO

import pytest
from django.core.management import call_command

from awards.ledger import award_points_mismatches
from awards.models import Award, AwardRevocation
from scoring.models import TierChange, UserScore

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_seed_demo_grants_awards_once_and_keeps_the_ledger():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "awards: 7 new" in out.getvalue()
    assert Award.objects.count() == 7
    assert Award.objects.filter(public=False).count() == 1
    assert AwardRevocation.objects.get().award.recipient.username == "siltsmith"
    # The 20,000-point keynote award lifts its member into Murk Lurker whatever the random
    # telemetry: activity is at most (8 groups * 1,000 + 8 * 50) * 1.5 * 1.5 = 18,900.
    assert UserScore.objects.get(username="reedrunner").tier >= 2
    assert TierChange.objects.filter(member__username="reedrunner", cause="award").exists()
    assert award_points_mismatches() == []

    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "awards: 0 new" in out.getvalue()
    assert Award.objects.count() == 7
    assert AwardRevocation.objects.count() == 1
