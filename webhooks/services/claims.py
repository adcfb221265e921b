"""The SQL of sending: claiming due deliveries and recording the attempts' outcomes.

Every statement runs on its own (autocommit): no transaction is held while a receiver
thinks. A claim marks deliveries ``sending`` with a lease (``locked_until``) and counts the
attempt; the outcome is written only where the attempt still owns the delivery (state
``sending`` and the same attempt count), so a worker whose lease ran out (and whose
delivery the sweep handed to another) never overwrites the newer attempt.

A delivery is claimable when it is due (``pending`` and ``next_attempt_at`` passed, or
``sending`` with its lease run out), its endpoint is active, and no earlier delivery of the
same member to the same endpoint is open: only the head of each member's line is ever
sent, which keeps the per-member order.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from webhooks.models import WebhookDelivery, WebhookEndpoint

_DUE = (
    "(({t}.state = 'pending' AND {t}.next_attempt_at <= %s) "
    "OR ({t}.state = 'sending' AND {t}.locked_until < %s))"
)
_HEAD = (
    "NOT EXISTS (SELECT 1 FROM {table} p WHERE p.endpoint_id = {t}.endpoint_id "
    "AND p.member_id = {t}.member_id AND p.event_id < {t}.event_id "
    "AND p.state IN ('pending', 'sending'))"
)


@dataclass(frozen=True)
class Outcome:
    """What to write for one claimed delivery after its attempt.

    ``unsent``: the attempt was not made after all (the batch stopped first); the delivery
    goes back to ``pending`` with its attempt count restored.
    """

    delivery_id: int
    attempts: int
    state: str
    status: int | None = None
    latency_ms: int | None = None
    error: str = ""
    excerpt: str = ""
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None
    unsent: bool = False


def _table() -> str:
    return connection.ops.quote_name(WebhookDelivery._meta.db_table)


def _dt(value: datetime | None) -> str | None:
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


def lease_until(now: datetime) -> datetime:
    """The end of the lease an attempt claimed at ``now`` holds its delivery for."""
    return now + timedelta(seconds=lease_s())


def lease_s() -> float:
    """How long a claimed delivery is held (``WEBHOOK_LEASE_S``, at least two timeouts)."""
    return max(settings.WEBHOOK_LEASE_S, settings.WEBHOOK_TIMEOUT_S * 2)


def claim_batch(*, endpoint_id: int, now: datetime, limit: int) -> list[int]:
    """Claim up to ``limit`` claimable deliveries of one endpoint, oldest first; returns
    their ids. On PostgreSQL rows another claimer holds are skipped (``SKIP LOCKED``)."""
    table = _table()
    endpoints = connection.ops.quote_name(WebhookEndpoint._meta.db_table)
    skip = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    due_c, due_t = _DUE.format(t="c"), _DUE.format(t=table)
    # The pick is a materialized CTE: as an IN (subquery) PostgreSQL may run it again for
    # each row it updates, and with SKIP LOCKED every run picks other rows (far more than
    # ``limit`` would be claimed). Identifiers from model metadata; values are parameters.
    sql = (
        f"WITH picked AS MATERIALIZED (SELECT c.id FROM {table} c "  # noqa: S608
        f"WHERE c.endpoint_id = %s AND {due_c} "
        f"AND EXISTS (SELECT 1 FROM {endpoints} e WHERE e.id = c.endpoint_id AND e.active) "
        f"AND {_HEAD.format(table=table, t='c')} ORDER BY c.id LIMIT %s{skip}) "
        f"UPDATE {table} SET state = 'sending', attempts = attempts + 1, "
        f"last_attempt_at = %s, locked_until = %s "
        f"WHERE id IN (SELECT id FROM picked) AND {due_t} RETURNING id"
    )
    at, lease = _dt(now), _dt(lease_until(now))
    with connection.cursor() as cursor:
        cursor.execute(sql, [endpoint_id, at, at, limit, at, lease, at, at])
        return sorted(row[0] for row in cursor.fetchall())


def claim_one(*, delivery_id: int, now: datetime) -> int | None:
    """Claim one delivery if it is claimable; returns its attempt count, or None."""
    table = _table()
    endpoints = connection.ops.quote_name(WebhookEndpoint._meta.db_table)
    sql = (
        f"UPDATE {table} SET state = 'sending', attempts = {table}.attempts + 1, "  # noqa: S608
        f"last_attempt_at = %s, locked_until = %s WHERE {table}.id = %s "
        f"AND {_DUE.format(t=table)} "
        f"AND EXISTS (SELECT 1 FROM {endpoints} e WHERE e.id = {table}.endpoint_id AND e.active) "
        f"AND {_HEAD.format(table=table, t=table)} RETURNING attempts"
    )
    at = _dt(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [at, _dt(lease_until(now)), delivery_id, at, at])
        row = cursor.fetchone()
    return None if row is None else row[0]


def claimable_exists(*, endpoint_id: int, now: datetime) -> bool:
    """True when the endpoint has a delivery that could be claimed now."""
    table = _table()
    endpoints = connection.ops.quote_name(WebhookEndpoint._meta.db_table)
    sql = (
        f"SELECT 1 FROM {table} c WHERE c.endpoint_id = %s AND {_DUE.format(t='c')} "  # noqa: S608
        f"AND EXISTS (SELECT 1 FROM {endpoints} e WHERE e.id = c.endpoint_id AND e.active) "
        f"AND {_HEAD.format(table=table, t='c')} LIMIT 1"
    )
    at = _dt(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [endpoint_id, at, at])
        return cursor.fetchone() is not None


_RECORD_TYPES = (
    "bigint",
    "integer",
    "varchar(10)",
    "integer",
    "integer",
    "varchar(300)",
    "varchar(500)",
    "timestamptz",
    "timestamptz",
    "integer",
)


def outcomes_record(outcomes: Sequence[Outcome]) -> set[int]:
    """Write the outcomes in one statement; returns the ids of the deliveries that were
    still owned by their attempt (and so were updated)."""
    if not outcomes:
        return set()
    postgresql = connection.vendor == "postgresql"
    row_sql = (
        "(" + ", ".join(f"CAST(%s AS {t})" if postgresql else "%s" for t in _RECORD_TYPES) + ")"
    )
    params: list[int | str | None] = []
    for o in outcomes:
        params += [
            o.delivery_id,
            o.attempts,
            o.state,
            o.status,
            o.latency_ms,
            o.error[:300],
            o.excerpt[:500],
            _dt(o.delivered_at),
            _dt(o.next_attempt_at),
            1 if o.unsent else 0,
        ]
    table = _table()
    # v.column1..10 (both databases name VALUES columns so): id, attempts, state, status,
    # latency, error, excerpt, delivered_at, next_attempt_at, unsent.
    kept = "CASE WHEN v.column10 = 1 THEN {t}.{c} ELSE v.{v} END"
    sql = (
        f"UPDATE {table} SET state = v.column3, "  # noqa: S608
        f"attempts = {table}.attempts - v.column10, locked_until = NULL, "
        f"last_status = {kept.format(t=table, c='last_status', v='column4')}, "
        f"last_latency_ms = {kept.format(t=table, c='last_latency_ms', v='column5')}, "
        f"last_error = {kept.format(t=table, c='last_error', v='column6')}, "
        f"response_excerpt = {kept.format(t=table, c='response_excerpt', v='column7')}, "
        f"delivered_at = v.column8, "
        f"next_attempt_at = COALESCE(v.column9, {table}.next_attempt_at) "
        f"FROM (VALUES {', '.join([row_sql] * len(outcomes))}) AS v "
        f"WHERE {table}.id = v.column1 AND {table}.state = 'sending' "
        f"AND {table}.attempts = v.column2 RETURNING {table}.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}
