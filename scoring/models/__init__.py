"""Telemetry, API keys, metrics, snapshots, scores and tiers (SPEC §3).

One module per concern; every model is importable from ``scoring.models``.
"""

from scoring.models.events import EventStatus, PendingEvent, TelemetryEvent
from scoring.models.keys import ApiKey
from scoring.models.metrics import MemberMetrics, MetricsSnapshot
from scoring.models.outbox import OutboxEvent
from scoring.models.rules import PipelineRun, RescoreJob, ScoringRules
from scoring.models.scores import ScoreHistory, TierBadgeClaim, TierChange, UserScore

__all__ = [
    "ApiKey",
    "EventStatus",
    "MemberMetrics",
    "MetricsSnapshot",
    "OutboxEvent",
    "PendingEvent",
    "PipelineRun",
    "RescoreJob",
    "ScoreHistory",
    "ScoringRules",
    "TelemetryEvent",
    "TierBadgeClaim",
    "TierChange",
    "UserScore",
]
