"""Why a stored activity score is what it is: its explanation, line by line.

The score writer (``scores_refresh``) stores with each score what the activity was
computed from: ``rules_version``, ``as_of`` and ``breakdown``, a JSON document holding the
formula's date-free inputs::

    {"counts": {group: count, ...},   # the member's event counts per command group
     "rolling_days": n,               # active days in the rolling window ending at as_of
     "constants": {...}}              # only when settings.SCORING overrode the version

With ``UserScore.streak_days`` that is everything ``formula.activity_from_inputs`` needs,
so the explanation recomputes the very same exact product and floor — never with today's
date — and its lines add up to the stored ``activity_score``.
"""

from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from math import floor

from scoring.formula import ScoringConstants, activity_from_inputs, activity_score
from scoring.models import MemberMetrics, UserScore
from scoring.rules import rules_constants_for_score, rules_in_force


class ExplanationUnavailable(Exception):
    """A score written before explanations were stored, whose inputs have since changed."""


@dataclass(frozen=True)
class GroupLine:
    """One command group: ``count`` x base points = ``points``, capped to ``capped_points``."""

    group: str
    count: int
    points: Fraction | int
    capped_points: Fraction | int
    cap: Fraction | int

    @property
    def cut(self) -> Fraction | int:
        """What the cap took off (0 when under the cap)."""
        return self.points - self.capped_points


@dataclass(frozen=True)
class ActivityExplanation:
    """Every figure of a stored activity score, as it was computed.

    ``activity_score == floor((base_points + diversity_points) x streak_multiplier x
    rolling_multiplier)`` exactly; ``base_points`` is the sum of the groups' capped points.
    """

    rules_version: int
    as_of: date | None
    groups: list[GroupLine]
    base_points: Fraction | int
    diversity_bonus: Fraction | int
    diversity_points: Fraction | int
    streak_days: int
    streak_multiplier: Fraction
    streak_max: Fraction
    rolling_active_days: int
    rolling_window: int
    rolling_multiplier: Fraction
    base_per_event: Fraction | int
    activity_score: int
    # settings.SCORING overrode the version's constants when this score was written.
    overridden: bool

    @property
    def product(self) -> Fraction:
        """The exact value before the floor."""
        return (
            (Fraction(self.base_points) + self.diversity_points)
            * self.streak_multiplier
            * self.rolling_multiplier
        )


def _explain(
    *,
    version: int,
    as_of: date | None,
    counts: dict,
    streak_days: int,
    rolling_days: int,
    constants: ScoringConstants,
    overridden: bool,
) -> ActivityExplanation:
    lines: list[tuple] = []
    result = activity_from_inputs(
        event_counts=counts,
        streak_days=streak_days,
        rolling_active_days=rolling_days,
        constants=constants,
        groups_out=lines,
    )
    caps = constants.group_caps
    groups = sorted(
        (
            GroupLine(
                group=group,
                count=count,
                points=points,
                capped_points=capped,
                cap=caps.get(group.lower(), constants.group_cap) if caps else constants.group_cap,
            )
            for group, count, points, capped in lines
        ),
        key=lambda line: line.group,
    )
    explanation = ActivityExplanation(
        rules_version=version,
        as_of=as_of,
        groups=groups,
        base_points=result._base,
        diversity_bonus=constants.diversity_bonus,
        diversity_points=result._diversity,
        streak_days=result.streak_days,
        streak_multiplier=result.streak_mult,
        streak_max=Fraction(constants.streak_max),
        rolling_active_days=result.rolling_active_days,
        rolling_window=constants.rolling_days,
        rolling_multiplier=result.rolling_mult,
        base_per_event=constants.base_points,
        activity_score=result.activity,
        overridden=overridden,
    )
    # The formula and this explanation share one implementation; this only guards it.
    assert floor(explanation.product) == result.activity  # noqa: S101
    return explanation


def activity_explanation(
    *, score: UserScore | None, metrics: MemberMetrics | None = None
) -> ActivityExplanation:
    """The explanation of ``score``'s activity (a member not scored yet: all zeros under
    the rules in force).

    From the inputs stored with the score; a score written before they were stored is
    explained from ``metrics`` (read when not given) as of the day it was computed, and raises
    ``ExplanationUnavailable`` when that no longer reproduces it (the next refresh, or
    ``manage.py rescore``, stores the inputs). One query (the version's constants), none
    when the score carries its own.
    """
    if score is None:
        rules = rules_in_force()
        return _explain(
            version=rules.version,
            as_of=None,
            counts={},
            streak_days=0,
            rolling_days=0,
            constants=rules.constants,
            overridden=rules.overrides is not None,
        )
    stored = score.breakdown or {}
    overrides = stored.get("constants")
    constants = rules_constants_for_score(version=score.rules_version, overrides=overrides)
    if score.breakdown is not None:
        explanation = _explain(
            version=score.rules_version,
            as_of=score.as_of,
            counts=stored.get("counts") or {},
            streak_days=score.streak_days,
            rolling_days=int(stored.get("rolling_days") or 0),
            constants=constants,
            overridden=overrides is not None,
        )
    else:
        # Written before the inputs were stored: the batch computed it as of the UTC day of
        # computed_at, from the metrics it had then, which are today's unless they changed.
        as_of = score.as_of or score.computed_at.date()
        if metrics is None:
            metrics = MemberMetrics.objects.filter(member_id=score.member_id).first()
        counts = metrics.event_counts if metrics else {}
        dates = metrics.active_dates if metrics else []
        replay = activity_score(
            event_counts=counts, active_dates=dates, as_of=as_of, constants=constants
        )
        explanation = _explain(
            version=score.rules_version,
            as_of=as_of,
            counts=counts,
            streak_days=replay.streak_days,
            rolling_days=replay.rolling_active_days,
            constants=constants,
            overridden=False,
        )
    if explanation.activity_score != score.activity_score:
        raise ExplanationUnavailable(
            f"the stored activity {score.activity_score} is not reproduced by its inputs"
        )
    return explanation
