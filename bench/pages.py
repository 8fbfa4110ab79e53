"""Page and dashboard benchmark: server time of the console pages, the dashboard and /metrics, and the snapshot
and tally jobs, in-process (Django's test Client, no network) on a database of 100,000 or 1,000,000 items.

    .venv/bin/python bench/pages.py [--quick] [--sizes 100000,1000000] [--repeat 30] [--reuse]

Quick: 100,000 items. Full: 100,000 items, then 1,000,000 (a fresh database each). For each size: the database
tollgate_bench_pages is created afresh, migrated, ``apply_policies policies/`` and ``seed_demo`` run (queues,
teams, alice/bob/supervisor), then loaded straight in SQL (INSERT ... SELECT generate_series, in chunks, with
the secondary indexes dropped during the load and rebuilt from their own definitions afterwards):

- items over the 11 queues and 5 workflows, ids in arrival order over 30 days, the last day a surge (20% of
  the items) that holds the live ones: overall ~10% open, 2% claimed, 1% snoozed, 85% resolved, 2% expired or
  cancelled; captured state of ~3 KB (proposal, input, context, a six-step trace); reasons from the policies'
  rules and low_confidence; SLA stages and breaches from each workflow's SLA;
- 3 gate decisions per item (the item's hold, and two others, ~95% proceed), ids in time order;
- one delivery per resolved or expired item (80% webhook with one attempt row, 20% poll; 0.2% dead letters);
- audit events per item (raised, claimed, snoozed, resolved, expired, cancelled as they apply), and 5 events
  (raised, claimed, lease_renewed, released, commented) on the open billing items whose pages are measured;
- QueueSnapshot rows, one per queue per minute for --snapshot-days (3) days, flows counted from the items;
then VACUUM ANALYZE. Then, in this order: tallies_advance (the first, catch-up run measured, then run to the end
of the backlog), 1,000 new decisions and one steady-state tallies_advance, snapshots_take five times, and each
page: 3 warm-up requests, --repeat timed ones (p50/p95 of server time), one more under CaptureQueriesContext
(SQL statements and their time). Pages that miss their target get EXPLAIN (ANALYZE, BUFFERS) of their slowest
statement. CPU is measured beside wall time: this process (Django, the server here), the PostgreSQL backends
of the bench database, and what the rest of the machine used (it is shared).

Targets (issues 5 and 7): console pages p95 < 100 ms with 100,000 items, as an operator whose team works the
queues (alice, team finance) and as a supervisor; with 1,000,000 items the dashboard pages (/dashboard,
/dashboard/live, /api/v1/stats/queues, /metrics) p95 < 200 ms and one snapshot tick < 2 s. Figures at the
other size are reported with the same target in brackets, not gated. Prints a table and writes
bench/results/pages.json. Loopback only; every loop is bounded; only tollgate_bench_pages is dropped.
"""

# The SQL below is assembled from this file's own constants (no outside input), so S608 does not apply.
# ruff: noqa: S608

import argparse
import gc
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench import common

DATABASE = "tollgate_bench_pages"
REDIS_DB = 14  # the benches' Redis database (they run one after another)
CONSOLE_SIZE = 100_000  # issue 5: console pages at this many items
DASHBOARD_SIZE = 1_000_000  # issue 7: dashboard and snapshot tick at this many items
CHUNK = 50_000  # items per INSERT ... SELECT
WARMUP = 3
MIN_REPEAT = 10
PAGE_BUDGET_S = 90.0  # per page and role; slower pages get fewer than --repeat timed requests
PAGE_TARGET_MS = 100.0
DASHBOARD_TARGET_MS = 200.0
TICK_TARGET_S = 2.0
SNAPSHOT_RUNS = 5
STEADY_DECISIONS = 1_000
CATCH_UP_MAX_RUNS = 200  # tallies_advance runs allowed to work off the loaded backlog
ITEM_PAGES = 5  # open billing items whose pages are measured, in turn
RECENT_FROM = 0.8  # items (g - 1) / N >= this arrived in the last 24 h; the older ones over the 29 days before
OLDER_SECONDS = 29 * 86400
DEAD_FRACTION = 0.002  # of webhook deliveries
AGENT = "bench-agent"
EXTRA_OPERATORS = {"finance": ["bench-finance-1", "bench-finance-2", "bench-finance-3"], "operations": []}
EXTRA_OPERATORS["operations"] = ["bench-ops-1", "bench-ops-2", "bench-ops-3"]
LOADED_TABLES = [
    "exceptions_app_gatedecision",
    "exceptions_app_exceptionitem",
    "exceptions_app_delivery",
    "exceptions_app_deliveryattempt",
    "exceptions_app_auditevent",
]

CONSOLE_PAGES = [
    ("queues", "/", {}),
    ("queue_table", "/queues/table", {"HX-Request": "true", "HX-Target": "queue-table"}),
    ("item", "/items/{item}", {}),
    ("search.open", "/items/search?status=open", {}),
    ("search.reason", "/items/search?reason=low_confidence&workflow=billing.invoice_adjustment", {}),
]
DASHBOARD_PAGES = [
    ("dashboard", "/dashboard", {}),
    ("dashboard_live", "/dashboard/live", {"HX-Request": "true"}),
    ("api.stats_queues", "/api/v1/stats/queues", {}),
    ("metrics", "/metrics", {}),
]

PHRASES = [
    "customer reported a service outage and asked for a credit on the affected billing period",
    "matched the ledger entry against the bank statement line within the configured tolerance",
    "carrier quote exceeds the lane estimate and alternative carriers are over capacity this week",
    "the extracted IBAN differs from the supplier master data recorded at onboarding",
    "retry budget exhausted after transient upstream timeouts on the settlement API",
    "invoice total and line amounts disagree after currency conversion at the booking rate",
    "previous adjustments for this account were approved by the billing team last quarter",
    "the model is unsure which of two open receivables the payment should be applied to",
    "shipment contains hazardous goods and the carrier certification could not be confirmed",
    "document scan quality is low on page two and the due date was inferred from context",
]
PHRASES_SQL = "(ARRAY[" + ", ".join(f"'{phrase}'" for phrase in PHRASES) + "])"
TOOLS_SQL = (
    "(ARRAY['lookup_record', 'customer_history', 'policy_check', 'ledger_search', 'draft_output', 'self_review'])"
)


def U(k: int, var: str = "g") -> str:
    """A uniform pseudo-random number in [0, 1) from the row number: the same in every statement."""
    return f"((hashint8({var} * 64 + {k}) & 2147483647)::float8 / 2147483648.0)"


# --- the generated rows, layer by layer -------------------------------------------------------------------------

# h: the row number and its random draws.
H_SQL = f"""
SELECT g, (g - 1)::float8 / %(total)s AS f, floor({U(1)} * %(slots)s)::int AS slot, %(t0)s::timestamptz AS t0,
       {U(0)} AS u0, {U(2)} AS u2, {U(3)} AS u3, {U(4)} AS u4, {U(5)} AS u5, {U(6)} AS u6, {U(7)} AS u7,
       {U(8)} AS u8, {U(9)} AS u9, {U(10)} AS u10, {U(12)} AS u12, {U(13)} AS u13
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
"""

# s: the route (queue, workflow, rule), status and age.
S_SQL = f"""
SELECT *,
    CASE WHEN f >= {RECENT_FROM} THEN (1 - f) / (1 - {RECENT_FROM}) * 86400
         ELSE 86400 + ({RECENT_FROM} - f) / {RECENT_FROM} * {OLDER_SECONDS} END AS age,
    CASE WHEN f >= {RECENT_FROM} THEN
        CASE WHEN u0 < 0.50 THEN 'open' WHEN u0 < 0.60 THEN 'claimed' WHEN u0 < 0.65 THEN 'snoozed' ELSE 'resolved' END
    ELSE CASE WHEN u0 < 0.975 THEN 'resolved' WHEN u0 < 0.9875 THEN 'expired' ELSE 'cancelled' END END AS status,
    (rule_code IS NULL OR u4 < 0.4) AS lowconf,
    round((5 + u3 * u3 * 20000)::numeric, 2) AS amount,
    (ARRAY['credit', 'refund', 'rerate'])[1 + mod(g, 3)::int] AS kind,
    (ARRAY['USD', 'EUR', 'GBP'])[1 + mod(g / 3, 3)::int] AS currency,
    CASE WHEN u9 < 0.8 THEN 'https://agents.example.com/tollgate/callback' ELSE '' END AS callback_url
FROM ({H_SQL} OFFSET 0) AS h JOIN pg_temp.bench_routes USING (slot)
"""

# v: confidence, reasons, severity, arrival.
V_SQL = f"""
SELECT s.*,
    CASE WHEN lowconf THEN coalesce(auto_reject, 0.3) + u2 * (auto_approve - coalesce(auto_reject, 0.3))
         ELSE auto_approve + u2 * (0.999 - auto_approve) END AS conf,
    coalesce(rule_severity, 'medium') AS severity,
    t0 - age * interval '1 second' AS raised
FROM ({S_SQL}) AS s
"""

# w: reasons (they need the confidence) and the claim time.
W_SQL = f"""
SELECT v.*,
    CASE WHEN rule_code IS NULL THEN jsonb_build_array(lc)
         WHEN lowconf THEN jsonb_build_array(jsonb_build_object('code', rule_code, 'severity', rule_severity), lc)
         ELSE jsonb_build_array(jsonb_build_object('code', rule_code, 'severity', rule_severity)) END AS reasons,
    CASE WHEN status = 'resolved'
             THEN least(raised + (30 + u5 * u5 * sla_s * 1.5) * interval '1 second', t0 - interval '2 seconds')
         WHEN status = 'claimed' THEN greatest(raised, t0 - u12 * 600 * interval '1 second') END AS claimed_at
FROM ({V_SQL}) AS v
CROSS JOIN LATERAL (SELECT jsonb_build_object('code', 'low_confidence', 'severity', 'medium',
    'confidence', round(conf::numeric, 3), 'threshold', auto_approve) AS lc) AS l
"""

# x: resolution time.
X_SQL = f"""
SELECT w.*,
    CASE WHEN status = 'resolved'
             THEN least(claimed_at + (20 + u6 * u6 * u6 * 1800) * interval '1 second', t0 - interval '1 second')
         WHEN status = 'expired' THEN least(raised + expire_s * interval '1 second', t0 - interval '1 second')
         END AS resolved_at,
    raised + sla_s * interval '1 second' AS due_at,
    raised + 0.75 * sla_s * interval '1 second' AS sla_near_at,
    (status IN ('resolved', 'expired') AND callback_url <> '' AND u10 < {DEAD_FRACTION}) AS dead
FROM ({W_SQL}) AS w
"""

# y: SLA stage as of resolution (or now, for live items).
Y_SQL = f"""
SELECT x.*,
    CASE WHEN ends > due_at + interval '10 seconds' THEN 2 WHEN ends > sla_near_at THEN 1 ELSE 0 END AS sla_stage,
    CASE WHEN ends > due_at + interval '10 seconds' THEN due_at + interval '10 seconds' END AS sla_breached_at
FROM (
    SELECT x.*, coalesce(resolved_at, CASE WHEN status = 'cancelled' THEN least(raised + interval '300 seconds', t0)
                                           ELSE t0 END) AS ends
    FROM ({X_SQL}) AS x
) AS x
"""

PROPOSAL_SQL = f"""
jsonb_build_object(
    'invoice_id', 'INV-' || (2025000000 + g), 'type', kind, 'amount', amount, 'currency', currency,
    'reason', {PHRASES_SQL}[1 + mod(g, 10)::int] || ', ticket T-' || (700000 + mod(g, 90000)),
    'lines', jsonb_build_array(
        jsonb_build_object('description', 'line 1 of ' || kind, 'amount', round(amount / 2, 2)),
        jsonb_build_object('description', 'line 2 of ' || kind, 'amount', amount - round(amount / 2, 2))))
"""

INPUT_SQL = """
jsonb_build_object(
    'invoice_total', round(amount * 2.5, 2), 'currency', currency,
    'customer', jsonb_build_object('id', 'C-' || lpad(mod(g, 50000)::text, 5, '0'),
        'segment', (ARRAY['smb', 'mid-market', 'enterprise'])[1 + mod(g / 7, 3)::int],
        'since', (date '2015-01-01' + mod(g, 3650)::int)::text),
    'invoice_lines', jsonb_build_array(
        jsonb_build_object('sku', 'SKU-' || mod(g, 997), 'quantity', 1 + mod(g, 9), 'amount', round(amount, 2)),
        jsonb_build_object('sku', 'SKU-' || mod(g, 991), 'quantity', 1 + mod(g, 5), 'amount', round(amount * 0.8, 2)),
        jsonb_build_object('sku', 'SKU-' || mod(g, 983), 'quantity', 1 + mod(g, 3), 'amount', round(amount * 0.7, 2))))
"""

CONTEXT_SQL = f"""
jsonb_build_object(
    'customer_id', 'C-' || lpad(mod(g, 50000)::text, 5, '0'),
    'channel', (ARRAY['portal', 'email', 'api'])[1 + mod(g, 3)::int],
    'ticket', 'T-' || (700000 + mod(g, 90000)),
    'history', jsonb_build_array(
        jsonb_build_object('at', (raised - interval '40 days')::date::text, 'type', 'credit',
            'amount', round(amount / 3, 2)),
        jsonb_build_object('at', (raised - interval '95 days')::date::text, 'type', 'refund',
            'amount', round(amount / 5, 2)),
        jsonb_build_object('at', (raised - interval '300 days')::date::text, 'type', 'rerate', 'amount', 12.5)),
    'notes', {PHRASES_SQL}[1 + mod(g + 3, 10)::int])
"""

TRACE_SQL = f"""
jsonb_build_object(
    'model', 'bench-model-2025-06', 'run_id', md5('run' || g),
    'tokens', jsonb_build_object('prompt', 1200 + mod(g, 800), 'completion', 150 + mod(g, 120)),
    'steps', (SELECT jsonb_agg(jsonb_build_object(
                  'n', n, 'tool', {TOOLS_SQL}[n], 'ms', 40 + mod(g * n, 900),
                  'observation', {PHRASES_SQL}[1 + mod(g + n, 10)::int] || '. '
                      || {PHRASES_SQL}[1 + mod(g * 7 + n * 3, 10)::int] || '. ref ' || md5(g::text || '-' || n))
                  ORDER BY n)
              FROM generate_series(1, 6) AS n))
"""

DECISIONS_SQL = f"""
INSERT INTO exceptions_app_gatedecision (
    id, workflow_id, policy_version_id, agent_id, verdict, confidence, reasons, output, input, context,
    correlation_id, value_at_risk, callback_url, idempotency_key, request_fingerprint, created_at
)
SELECT 3 * g - 2 + k, workflow_id, policy_version_id, agent_id, d.verdict, d.confidence,
    CASE d.verdict WHEN 'hold' THEN reasons
        WHEN 'reject' THEN jsonb_build_array(jsonb_build_object('code', 'below_auto_reject',
            'confidence', round(d.confidence::numeric, 3), 'threshold', auto_reject))
        ELSE '[]'::jsonb END,
    jsonb_build_object('invoice_id', 'INV-' || (2025000000 + g), 'type', kind, 'amount', amount,
        'currency', currency, 'reason', {PHRASES_SQL}[1 + mod(g + k, 10)::int]),
    jsonb_build_object('invoice_total', round(amount * 2.5, 2), 'currency', currency),
    NULL, 'run-' || g || '-' || k, amount, '', NULL, md5('decision-' || g || '-' || k),
    raised - (2 - k) * interval '1 second'
FROM ({W_SQL}) AS w
CROSS JOIN generate_series(0, 2) AS k
CROSS JOIN LATERAL (
    SELECT CASE WHEN k = 2 THEN 'hold' WHEN uk < 0.05 AND auto_reject IS NOT NULL THEN 'reject' ELSE 'proceed' END
               AS verdict,
           CASE WHEN k = 2 THEN conf WHEN uk < 0.05 AND auto_reject IS NOT NULL THEN auto_reject * uk * 19
                ELSE auto_approve + (0.999 - auto_approve) * uk END AS confidence
    FROM (SELECT {U(20, "(g + k * 1000003)")} AS uk) AS r
) AS d
ORDER BY g, k
"""

ITEMS_SQL = f"""
INSERT INTO exceptions_app_exceptionitem (
    id, kind, decision_id, proposal, confidence, input, context, trace, model_version, correlation_id,
    idempotency_key, request_fingerprint, reasons, severity, value_at_risk, callback_url, status, priority,
    due_at, snoozed_until, expires_at, sla_breached_at, sla_stage, sla_near_at, claimed_by_id, claim_expires_at,
    resolution, final_output, reason_code, resolution_note, resolved_by_id, raised_at, queued_at,
    first_claimed_at, claimed_at, resolved_at, delivered_at, acknowledged_at, updated_at,
    policy_version_id, agent_id, queue_id, workflow_id
)
SELECT g, 'hold', 3 * g, p.proposal, conf, {INPUT_SQL}, {CONTEXT_SQL}, {TRACE_SQL}, 'bench-model-2025-06',
    'run-' || g, NULL, md5('fingerprint-' || g), reasons, severity, amount, callback_url, status,
    CASE severity WHEN 'low' THEN 100 WHEN 'medium' THEN 200 WHEN 'high' THEN 300 ELSE 400 END
        + round(20 * log(1 + amount))::int + CASE WHEN rule_code IS NULL THEN 0 ELSE 5 END,
    due_at,
    CASE WHEN status = 'snoozed' THEN t0 + (60 + u12 * 3600) * interval '1 second' END,
    raised + expire_s * interval '1 second', sla_breached_at, sla_stage, sla_near_at,
    CASE WHEN status = 'claimed' THEN resolver END,
    CASE WHEN status = 'claimed' THEN claimed_at + interval '600 seconds' END,
    CASE WHEN status = 'resolved' THEN CASE WHEN u7 < 0.70 THEN 'approve' WHEN u7 < 0.85 THEN 'modify' ELSE 'reject' END
         WHEN status = 'expired' THEN 'fallback' ELSE '' END,
    CASE WHEN status = 'resolved' AND u7 < 0.70 THEN p.proposal
         WHEN status = 'resolved' AND u7 < 0.85 THEN p.proposal || jsonb_build_object('amount', round(amount * 0.9, 2))
         END,
    CASE WHEN status = 'resolved' AND u7 >= 0.85
             THEN (ARRAY['wrong_amount', 'duplicate', 'not_authorised', 'policy_violation'])[1 + mod(g, 4)::int]
         WHEN status = 'expired' THEN 'expired_reject' ELSE '' END,
    CASE WHEN status = 'resolved' AND u13 < 0.2 THEN 'Checked against ticket T-' || (700000 + mod(g, 90000)) ELSE ''
         END,
    CASE WHEN status = 'resolved' THEN resolver END,
    raised, raised, claimed_at, claimed_at, resolved_at,
    CASE WHEN resolved_at IS NOT NULL AND NOT dead THEN resolved_at + interval '0.3 seconds' END,
    CASE WHEN resolved_at IS NOT NULL AND NOT dead AND callback_url <> '' THEN resolved_at + interval '0.3 seconds'
         END,
    CASE status WHEN 'resolved' THEN resolved_at WHEN 'expired' THEN resolved_at WHEN 'claimed' THEN claimed_at
         WHEN 'snoozed' THEN greatest(raised, t0 - u12 * 1800 * interval '1 second')
         WHEN 'cancelled' THEN least(raised + interval '300 seconds', t0) ELSE raised END,
    policy_version_id, agent_id, queue_id, workflow_id
FROM ({Y_SQL}) AS y
CROSS JOIN LATERAL (SELECT {PROPOSAL_SQL} AS proposal,
                           resolvers[1 + floor(u8 * array_length(resolvers, 1))::int] AS resolver) AS p
ORDER BY g
"""

DELIVERIES_SQL = f"""
INSERT INTO exceptions_app_delivery (
    public_id, workflow_id, item_id, decision_id, kind, target, target_queue, payload, status, attempts,
    next_attempt_at, leased_until, give_up_at, last_error, created_at, delivered_at, dead_at
)
SELECT 'msg_' || md5('delivery-' || i.id), i.workflow_id, i.id, i.decision_id, i.target_kind, i.callback_url, '',
    jsonb_build_object('type', 'exception.resolved', 'delivery_id', 'msg_' || md5('delivery-' || i.id),
        'item_id', i.id, 'decision_id', i.decision_id, 'workflow', w.name, 'correlation_id', i.correlation_id,
        'status', i.status, 'verdict', i.resolution, 'final_output', i.final_output, 'reason_code', i.reason_code,
        'note', i.resolution_note, 'resolver', coalesce(u.username, 'system'),
        'timestamps', jsonb_build_object('raised_at', i.raised_at, 'queued_at', i.queued_at,
            'first_claimed_at', i.first_claimed_at, 'resolved_at', i.resolved_at)),
    CASE WHEN i.dead THEN 'dead' ELSE 'delivered' END,
    CASE WHEN i.dead THEN 12 WHEN i.target_kind = 'webhook' THEN 1 ELSE 0 END,
    i.resolved_at, NULL, i.resolved_at + interval '1 day',
    CASE WHEN i.dead THEN 'retry budget spent after 12 attempts: HTTP 503 from the receiver' ELSE '' END,
    i.resolved_at, CASE WHEN NOT i.dead THEN i.resolved_at + interval '0.3 seconds' END,
    CASE WHEN i.dead THEN least(i.resolved_at + interval '20 hours', %(t0)s::timestamptz) END
FROM (
    SELECT item.*, CASE WHEN item.callback_url <> '' THEN 'webhook' ELSE 'poll' END AS target_kind,
        (item.callback_url <> '' AND {U(10, "item.id")} < {DEAD_FRACTION}) AS dead
    FROM exceptions_app_exceptionitem AS item
    WHERE item.id BETWEEN %(first)s AND %(last)s AND item.status IN ('resolved', 'expired')
) AS i
JOIN exceptions_app_workflow AS w ON w.id = i.workflow_id
LEFT JOIN auth_user AS u ON u.id = i.resolved_by_id
ORDER BY i.id
"""

ATTEMPTS_SQL = """
INSERT INTO exceptions_app_deliveryattempt (delivery_id, number, started_at, duration_ms, status_code, error, outcome)
SELECT d.id, n, d.created_at + (n - 1) * interval '90 minutes' + interval '0.2 seconds', 20 + mod(d.id * 37 + n, 180),
    CASE WHEN d.status = 'dead' THEN 503 ELSE 200 END,
    CASE WHEN d.status = 'dead' THEN 'HTTP 503' ELSE '' END,
    CASE WHEN d.status = 'delivered' THEN 'delivered' WHEN n < d.attempts THEN 'retry' ELSE 'terminal' END
FROM exceptions_app_delivery AS d
CROSS JOIN LATERAL generate_series(1, d.attempts) AS n
WHERE d.id > %(after)s AND d.kind = 'webhook'
ORDER BY d.id, n
"""

AUDIT_SQL = """
INSERT INTO exceptions_app_auditevent (
    item_id, workflow_id, action, from_status, to_status, actor_id, actor_label, payload, created_at
)
SELECT i.id, i.workflow_id, e.action, e.from_status, e.to_status, e.actor_id, e.actor_label, e.payload, e.at
FROM exceptions_app_exceptionitem AS i
JOIN exceptions_app_queue AS q ON q.id = i.queue_id
JOIN pg_temp.bench_queue_actor AS a ON a.queue_id = i.queue_id
LEFT JOIN auth_user AS c ON c.id = coalesce(i.resolved_by_id, i.claimed_by_id)
CROSS JOIN LATERAL (VALUES
    (1, 'raised', '', 'open', %(agent_user)s::bigint, %(agent_label)s::text,
        jsonb_build_object('queue', q.name, 'priority', i.priority,
            'reasons', (SELECT jsonb_agg(reason -> 'code') FROM jsonb_array_elements(i.reasons) AS reason)),
        i.raised_at, true),
    (2, 'claimed', 'open', 'claimed', c.id, c.username,
        jsonb_build_object('lease_until', i.first_claimed_at + interval '600 seconds'), i.first_claimed_at,
        i.first_claimed_at IS NOT NULL),
    (3, 'snoozed', 'open', 'snoozed', a.user_id, a.username, jsonb_build_object('until', i.snoozed_until),
        i.updated_at, i.status = 'snoozed'),
    (4, 'resolved', 'claimed', 'resolved', c.id, c.username,
        jsonb_build_object('resolution', i.resolution, 'reason_code', i.reason_code), i.resolved_at,
        i.status = 'resolved'),
    (5, 'expired', 'open', 'expired', NULL, 'system', jsonb_build_object('fallback', 'reject'), i.resolved_at,
        i.status = 'expired'),
    (6, 'cancelled', 'open', 'cancelled', %(agent_user)s::bigint, %(agent_label)s::text, '{}'::jsonb,
        i.updated_at, i.status = 'cancelled')
) AS e(n, action, from_status, to_status, actor_id, actor_label, payload, at, applies)
WHERE i.id BETWEEN %(first)s AND %(last)s AND e.applies
ORDER BY i.id, e.n
"""

# The measured item pages: four more events on top of 'raised', as an operator would leave them.
ITEM_EVENTS_SQL = """
INSERT INTO exceptions_app_auditevent (
    item_id, workflow_id, action, from_status, to_status, actor_id, actor_label, payload, created_at
)
SELECT i.id, i.workflow_id, e.action, e.from_status, e.to_status, %(user)s, %(label)s, e.payload,
    least(i.raised_at + e.after * interval '1 second', %(t0)s::timestamptz - (5 - e.n) * interval '1 second')
FROM exceptions_app_exceptionitem AS i
CROSS JOIN LATERAL (VALUES
    (1, 'claimed', 'open', 'claimed', jsonb_build_object('lease_until', i.raised_at + interval '900 seconds'), 300),
    (2, 'lease_renewed', 'claimed', 'claimed',
        jsonb_build_object('lease_until', i.raised_at + interval '1200 seconds'), 600),
    (3, 'released', 'claimed', 'open', jsonb_build_object('note', 'Need the customer contract; back later.'), 700),
    (4, 'commented', '', '', jsonb_build_object('text', 'Asked account management for the signed contract '
        || 'and the outage ticket. The amount looks right against the SLA credit table.'), 720)
) AS e(n, action, from_status, to_status, payload, after)
WHERE i.id = ANY(%(ids)s)
ORDER BY i.id, e.n
"""

SNAPSHOTS_SQL = """
WITH bounds AS (
    SELECT date_trunc('minute', %(t0)s::timestamptz) AS last,
           date_trunc('minute', %(t0)s::timestamptz) - %(days)s * interval '1 day' + interval '1 minute' AS first
), live AS (
    SELECT queue_id,
        count(*) FILTER (WHERE status = 'open') AS open,
        count(*) FILTER (WHERE status = 'claimed') AS claimed,
        count(*) FILTER (WHERE status = 'snoozed') AS snoozed,
        max(extract(epoch FROM %(t0)s::timestamptz - queued_at)) FILTER (WHERE status = 'open') AS oldest,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM %(t0)s::timestamptz - queued_at))
            FILTER (WHERE status = 'open') AS p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM %(t0)s::timestamptz - queued_at))
            FILTER (WHERE status = 'open') AS p95
    FROM exceptions_app_exceptionitem WHERE status IN ('open', 'claimed', 'snoozed')
    GROUP BY queue_id
), flows AS (
    SELECT queue_id, date_trunc('minute', at) + interval '1 minute' AS minute,
        sum(arrival) AS arrivals, sum(completion) AS completions, sum(breach) AS breaches
    FROM (
        SELECT queue_id, raised_at AS at, 1 AS arrival, 0 AS completion, 0 AS breach
        FROM exceptions_app_exceptionitem, bounds WHERE raised_at >= bounds.first - interval '1 minute'
        UNION ALL
        SELECT queue_id, resolved_at, 0, 1, 0
        FROM exceptions_app_exceptionitem, bounds WHERE resolved_at >= bounds.first - interval '1 minute'
        UNION ALL
        SELECT queue_id, sla_breached_at, 0, 0, 1
        FROM exceptions_app_exceptionitem, bounds WHERE sla_breached_at >= bounds.first - interval '1 minute'
    ) AS events
    GROUP BY 1, 2
)
INSERT INTO exceptions_app_queuesnapshot (
    queue_id, taken_at, depth, claimed, snoozed, oldest_age_seconds, p50_age_seconds, p95_age_seconds,
    arrivals, completions, sla_breaches, age_buckets,
    handled, handling_seconds_sum, handling_seconds_squares, operator_ids
)
SELECT q.id, m.minute,
    round(coalesce(l.open, 0) * sh)::int, round(coalesce(l.claimed, 0) * sh)::int,
    round(coalesce(l.snoozed, 0) * sh)::int, l.oldest * sh, l.p50 * sh, l.p95 * sh,
    coalesce(fl.arrivals, 0), coalesce(fl.completions, 0), coalesce(fl.breaches, 0),
    (SELECT jsonb_agg(round(coalesce(l.open, 0) * sh * share)::int ORDER BY ord)
     FROM unnest(ARRAY[0.02, 0.04, 0.06, 0.08, 0.10, 0.15, 0.20, 0.20, 0.15, 0.0]) WITH ORDINALITY AS b(share, ord)),
    0, 0, 0, '[]'::jsonb  -- no handling times recorded (migration 0018's columns have no database default)
FROM exceptions_app_queue AS q
CROSS JOIN bounds
CROSS JOIN LATERAL generate_series(bounds.first, bounds.last, interval '1 minute') AS m(minute)
CROSS JOIN LATERAL (SELECT 0.4 + 0.6 * extract(epoch FROM m.minute - bounds.first)
                           / greatest(1, extract(epoch FROM bounds.last - bounds.first)) AS sh) AS shape
LEFT JOIN live AS l ON l.queue_id = q.id
LEFT JOIN flows AS fl ON fl.queue_id = q.id AND fl.minute = m.minute
ORDER BY m.minute, q.id
"""

STEADY_DECISIONS_SQL = """
INSERT INTO exceptions_app_gatedecision (
    workflow_id, policy_version_id, agent_id, verdict, confidence, reasons, output, input, context,
    correlation_id, value_at_risk, callback_url, idempotency_key, request_fingerprint, created_at
)
SELECT r.workflow_id, r.policy_version_id, %(agent)s,
    CASE WHEN mod(n, 20) = 0 THEN 'reject' WHEN mod(n, 4) = 0 THEN 'hold' ELSE 'proceed' END,
    CASE WHEN mod(n, 20) = 0 THEN 0.1 WHEN mod(n, 4) = 0 THEN 0.6 ELSE 0.95 END,
    '[]'::jsonb, jsonb_build_object('invoice_id', 'INV-NEW-' || n, 'amount', 10 + n), NULL, NULL,
    'steady-' || n, 10 + n, '', NULL, md5('steady-' || n),
    %(t0)s::timestamptz - mod(n, 15) * interval '1 second'
FROM generate_series(1, %(count)s) AS n
JOIN unnest(%(workflows)s::bigint[], %(versions)s::bigint[]) WITH ORDINALITY AS r(workflow_id, policy_version_id, slot)
    ON r.slot = 1 + mod(n, cardinality(%(workflows)s::bigint[]))
"""


# --- setup --------------------------------------------------------------------------------------------------------


def bench_env() -> dict:
    env = common.bench_env(DATABASE, redis_db=REDIS_DB)
    env["ALLOWED_HOSTS"] = "testserver,127.0.0.1"
    return env


def manifest_complete() -> bool:
    """Whether staticfiles/staticfiles.json names every file under static/ (else pages cannot render)."""
    import json

    manifest = common.ROOT / "staticfiles" / "staticfiles.json"
    if not manifest.exists():
        return False
    paths = json.loads(manifest.read_text()).get("paths", {})
    source = common.ROOT / "static"
    wanted = {path.relative_to(source).as_posix() for path in source.rglob("*") if path.is_file()}
    return wanted <= set(paths)


def django_setup(env: dict) -> str:
    common.django_setup(env)
    if manifest_complete():
        return "whitenoise.storage.CompressedManifestStaticFilesStorage (manifest complete)"
    common.static_storage_plain()
    return "django StaticFilesStorage (manifest missing or incomplete)"


def django_close() -> None:
    """Close Django's connection and its pool (before the database is dropped)."""
    from django.db import connection

    connection.close()
    if hasattr(connection, "close_pool"):
        connection.close_pool()


def timed(step: str, steps: dict, function, *args, **kwargs):
    began, cpu = time.perf_counter(), common.own_cpu_seconds()
    result = function(*args, **kwargs)
    steps[step] = {"s": round(time.perf_counter() - began, 2), "own_cpu_s": round(common.own_cpu_seconds() - cpu, 2)}
    print(f"  {step}: {steps[step]['s']} s", file=sys.stderr)
    return result


def database_prepare(env: dict, steps: dict) -> None:
    timed("recreate", steps, common.database_recreate, DATABASE)
    timed("migrate", steps, common.manage, env, "migrate", "--no-input", timeout=600)
    timed("apply_policies", steps, common.manage, env, "apply_policies", "policies/")
    timed("seed_demo", steps, common.manage, env, "seed_demo")


def fixtures_create() -> dict:
    """The agent, more operators in both teams, and the routes (queue, workflow, rule) items are spread over."""
    from django.contrib.auth import get_user_model

    from exceptions_app.models import Queue, Workflow
    from exceptions_app.services.tokens import principal_ensure

    workflows = list(Workflow.objects.select_related("current_policy").order_by("name"))
    agent = principal_ensure(name=AGENT, role="agent", workflows=[workflow.name for workflow in workflows])
    for team, names in EXTRA_OPERATORS.items():
        for name in names:
            principal_ensure(name=name, role="operator", teams=[team])
    users = {user.username: user.pk for user in get_user_model().objects.all()}
    team_users = {
        team: [users[name] for name in [{"finance": "alice", "operations": "bob"}[team], *names]]
        for team, names in EXTRA_OPERATORS.items()
    }
    queues = {queue.name: queue for queue in Queue.objects.prefetch_related("teams")}
    routes = []
    for workflow in workflows:
        document = workflow.current_policy.document
        thresholds = document["thresholds"]
        entries = [(document["queue"], None, None, 6)]
        entries += [
            (rule.get("queue", document["queue"]), rule["code"], rule["severity"], 1) for rule in document["rules"]
        ]
        for queue_name, code, severity, weight in entries:
            queue = queues[queue_name]
            team = next(iter(queue.teams.all())).name
            routes += [
                {
                    "queue_id": queue.pk,
                    "workflow_id": workflow.pk,
                    "policy_version_id": workflow.current_policy_id,
                    "agent_id": agent.pk,
                    "queue_name": queue_name,
                    "workflow_name": workflow.name,
                    "sla_s": document["sla_seconds"],
                    "expire_s": document["expire_after_seconds"],
                    "rule_code": code,
                    "rule_severity": severity,
                    "auto_approve": thresholds["auto_approve"],
                    "auto_reject": thresholds.get("auto_reject"),  # operations has none
                    "resolvers": team_users[team],
                }
            ] * weight
    actors = {queue.pk: team_users[next(iter(queue.teams.all())).name][0] for queue in queues.values()}
    return {
        "routes": routes,
        "queue_actor": {
            pk: (user, next(name for name, uid in users.items() if uid == user)) for pk, user in actors.items()
        },
        "agent_user": agent.user_id,
        "agent_label": AGENT,
        "users": users,
        "queues": {name: queue.pk for name, queue in queues.items()},
        "team_of_alice": "finance",
        "queues_of_alice": sorted(
            name for name, queue in queues.items() if "finance" in {t.name for t in queue.teams.all()}
        ),
    }


def temp_tables(conn, fixtures: dict) -> None:
    conn.execute(
        "CREATE TEMP TABLE bench_routes (slot int PRIMARY KEY, queue_id bigint, workflow_id bigint, "
        "policy_version_id bigint, agent_id bigint, queue_name text, workflow_name text, sla_s int, expire_s int, "
        "rule_code text, rule_severity text, auto_approve float8, auto_reject float8, resolvers bigint[])"
    )
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO bench_routes VALUES (%(slot)s, %(queue_id)s, %(workflow_id)s, %(policy_version_id)s, "
            "%(agent_id)s, %(queue_name)s, %(workflow_name)s, %(sla_s)s, %(expire_s)s, %(rule_code)s, "
            "%(rule_severity)s, %(auto_approve)s, %(auto_reject)s, %(resolvers)s)",
            [{**route, "slot": slot} for slot, route in enumerate(fixtures["routes"])],
        )
        conn.execute("CREATE TEMP TABLE bench_queue_actor (queue_id bigint PRIMARY KEY, user_id bigint, username text)")
        cursor.executemany(
            "INSERT INTO bench_queue_actor VALUES (%s, %s, %s)",
            [(pk, user, name) for pk, (user, name) in fixtures["queue_actor"].items()],
        )
    conn.execute("ANALYZE bench_routes")
    conn.execute("ANALYZE bench_queue_actor")


SECONDARY_INDEXES_SQL = """
SELECT c.relname, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid
WHERE c.relname = ANY(%s) AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)
ORDER BY 1, 2
"""


def secondary_indexes(conn) -> list[tuple[str, str, str]]:
    """(table, index, definition) of the loaded tables' indexes that back no constraint."""
    return conn.execute(SECONDARY_INDEXES_SQL, (LOADED_TABLES,)).fetchall()


def dataset_load(fixtures: dict, size: int, snapshot_days: int, steps: dict) -> dict:
    """Everything in SQL over one psycopg connection (autocommit); returns the load figures."""
    slots = len(fixtures["routes"])
    with psycopg.connect(common.database_url(DATABASE), autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET statement_timeout = '60min'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET work_mem = '64MB'")
        backend = conn.info.backend_pid
        backend_cpu = common.cpu_seconds(backend)
        t0 = conn.execute("SELECT now()").fetchone()[0]
        temp_tables(conn, fixtures)
        indexes = secondary_indexes(conn)
        began = time.perf_counter()
        for _, name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        steps["drop_indexes"] = {"s": round(time.perf_counter() - began, 2), "indexes": len(indexes)}
        parts = {"decisions": 0.0, "items": 0.0, "deliveries": 0.0, "attempts": 0.0, "audit": 0.0}
        began = time.perf_counter()
        for first in range(1, size + 1, CHUNK):
            last = min(size, first + CHUNK - 1)
            params = {"t0": t0, "total": size, "slots": slots, "first": first, "last": last}
            for part, sql, extra in (
                ("decisions", DECISIONS_SQL, {}),
                ("items", ITEMS_SQL, {}),
                ("deliveries", DELIVERIES_SQL, {}),
            ):
                if part == "deliveries":
                    after = conn.execute("SELECT coalesce(max(id), 0) FROM exceptions_app_delivery").fetchone()[0]
                started = time.perf_counter()
                conn.execute(sql, {**params, **extra})
                parts[part] += time.perf_counter() - started
            started = time.perf_counter()
            conn.execute(ATTEMPTS_SQL, {"after": after})
            parts["attempts"] += time.perf_counter() - started
            started = time.perf_counter()
            conn.execute(
                AUDIT_SQL,
                {"first": first, "last": last, "agent_user": fixtures["agent_user"], "agent_label": AGENT},
            )
            parts["audit"] += time.perf_counter() - started
            print(f"  loaded {last:,} items ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
        steps["insert"] = {"s": round(time.perf_counter() - began, 2), "by_table_s": _rounded(parts)}
        for table in ("exceptions_app_exceptionitem", "exceptions_app_gatedecision"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        began = time.perf_counter()
        for _, _, definition in indexes:
            conn.execute(definition)
        rebuilt = {name for _, name, _ in secondary_indexes(conn)}
        if rebuilt != {name for _, name, _ in indexes}:
            raise RuntimeError(f"indexes differ after the rebuild: {sorted(rebuilt ^ {n for _, n, _ in indexes})}")
        steps["rebuild_indexes"] = {"s": round(time.perf_counter() - began, 2), "indexes": len(indexes)}
        measured = item_pages_prepare(conn, fixtures, t0)
        began = time.perf_counter()
        conn.execute(SNAPSHOTS_SQL, {"t0": t0, "days": snapshot_days})
        steps["snapshots"] = {"s": round(time.perf_counter() - began, 2)}
        began = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
        steps["vacuum_analyze"] = {"s": round(time.perf_counter() - began, 2)}
        steps["loader_backend_cpu_s"] = round(common.cpu_seconds(backend) - backend_cpu, 2)
    return {"t0": t0.isoformat(), "item_pages": measured, "secondary_indexes_rebuilt": len(indexes)}


def item_pages_prepare(conn, fixtures: dict, t0) -> list[int]:
    """The open billing items whose pages are measured (the head of the queue), with a five-event timeline."""
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM exceptions_app_exceptionitem WHERE queue_id = %s AND status = 'open' "
            "ORDER BY priority DESC, due_at, id LIMIT %s",
            (fixtures["queues"]["billing"], ITEM_PAGES),
        )
    ]
    alice = fixtures["users"]["alice"]
    conn.execute(ITEM_EVENTS_SQL, {"ids": ids, "user": alice, "label": "alice", "t0": t0})
    conn.execute(
        "UPDATE exceptions_app_exceptionitem SET first_claimed_at = raised_at + interval '300 seconds' "
        "WHERE id = ANY(%s)",
        (ids,),
    )
    return ids


def _rounded(values: dict) -> dict:
    return {key: round(value, 2) for key, value in values.items()}


def dataset_describe(item_pages: list[int]) -> dict:
    """Row counts, the status mix, table sizes and the captured state of the measured items."""
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        status = dict(conn.execute("SELECT status, count(*) FROM exceptions_app_exceptionitem GROUP BY 1").fetchall())
        counts = {
            table.removeprefix("exceptions_app_"): conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in [*LOADED_TABLES, "exceptions_app_queuesnapshot"]
        }
        sizes = {
            table.removeprefix("exceptions_app_"): conn.execute(
                "SELECT pg_total_relation_size(%s)", (table,)
            ).fetchone()[0]
            for table in [*LOADED_TABLES, "exceptions_app_queuesnapshot"]
        }
        verdicts = dict(conn.execute("SELECT verdict, count(*) FROM exceptions_app_gatedecision GROUP BY 1").fetchall())
        state = conn.execute(
            "SELECT avg(pg_column_size(proposal) + pg_column_size(input) + pg_column_size(context) "
            "+ pg_column_size(trace)), avg(octet_length(proposal::text) + octet_length(input::text) "
            "+ octet_length(context::text) + octet_length(trace::text)) FROM exceptions_app_exceptionitem "
            "WHERE id = ANY(%s)",
            (item_pages,),
        ).fetchone()
        events = conn.execute(
            "SELECT count(*) FROM exceptions_app_auditevent WHERE item_id = %s", (item_pages[0],)
        ).fetchone()[0]
        per_queue = dict(
            conn.execute(
                "SELECT q.name, count(*) FROM exceptions_app_exceptionitem AS i JOIN exceptions_app_queue AS q "
                "ON q.id = i.queue_id WHERE i.status = 'open' GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        dead = conn.execute("SELECT count(*) FROM exceptions_app_delivery WHERE status = 'dead'").fetchone()[0]
    total = sum(status.values())
    return {
        "rows": counts,
        "status_mix": {key: f"{value / total:.1%} ({value:,})" for key, value in sorted(status.items())},
        "verdicts": verdicts,
        "open_per_queue": per_queue,
        "dead_letters": dead,
        "total_bytes": sizes,
        "measured_item_state_bytes": {"stored": round(float(state[0])), "json_text": round(float(state[1]))},
        "measured_item_audit_events": events,
    }


def server_settings() -> dict:
    names = ["server_version", "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit"]
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        rows = conn.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (names,))
        return {name: f"{setting}{'' if not unit else ' x ' + unit}" for name, setting, unit in rows}


# --- measurements -------------------------------------------------------------------------------------------------


def _queries(captured) -> list[dict]:
    return [{"ms": round(float(query["time"]) * 1000, 3), "sql": query["sql"]} for query in captured]


def _top(queries: list[dict], count: int = 3) -> list[dict]:
    return [{**query, "sql": query["sql"][:3000]} for query in sorted(queries, key=lambda q: -q["ms"])[:count]]


class GcPauses:
    """Python garbage-collector pauses while active: a full (generation 2) collection scans the whole heap and
    shows up as a slow request, so each page records how many there were and how long they took."""

    def __init__(self):
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._started) * 1000))

    def __enter__(self):
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._callback)

    def figures(self) -> dict:
        full = [ms for generation, ms in self.pauses if generation == 2]
        return {
            "collections": len(self.pauses),
            "full_collections": len(full),
            "total_ms": round(sum(ms for _, ms in self.pauses), 1),
            "max_ms": round(max((ms for _, ms in self.pauses), default=0.0), 1),
            "max_full_ms": round(max(full, default=0.0), 1),
        }


def page_measure(client, path_for, headers: dict, repeat: int) -> dict:
    """Warm-up requests, ``repeat`` timed ones, then one under CaptureQueriesContext."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def get(index: int):
        response = client.get(path_for(index), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path_for(index)} answered {response.status_code}: {response.content[:500]!r}")
        return response

    began = time.perf_counter()
    for index in range(WARMUP):
        get(index)
    # Slow pages get fewer timed requests (at least MIN_REPEAT), so each page's loop stays within PAGE_BUDGET_S.
    repeat = max(MIN_REPEAT, min(repeat, int(PAGE_BUDGET_S / ((time.perf_counter() - began) / WARMUP))))
    meter = common.LocalCpuMeter(DATABASE)
    meter.start()
    latencies, size = [], 0
    with GcPauses() as pauses:
        for index in range(repeat):
            began = time.perf_counter()
            response = get(index)
            latencies.append(time.perf_counter() - began)
            size = len(response.content)
    cpu = meter.stop()
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as captured:
        began = time.perf_counter()
        get(repeat)
        captured_ms = (time.perf_counter() - began) * 1000
    queries = _queries(captured.captured_queries)
    return {
        "requests": repeat,
        "p50_ms": round(common.percentile(latencies, 0.50) * 1000, 2),
        "p95_ms": round(common.percentile(latencies, 0.95) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "response_bytes": size,
        "app_cpu_ms_per_request": round(cpu["own_cpu_s"] * 1000 / repeat, 2),
        "db_cpu_ms_per_request": round(cpu["postgres_cpu_s"] * 1000 / repeat, 2),
        "cpu": cpu,
        "gc": pauses.figures(),
        "queries": len(queries),
        "captured_request_ms": round(captured_ms, 2),
        "captured_sql_ms": round(sum(query["ms"] for query in queries), 2),
        "slowest_queries": _top(queries),
        "all_queries": [{"ms": query["ms"], "sql": query["sql"][:300]} for query in queries],
        "_queries_full": queries,
    }


def job_measure(function) -> dict:
    """One run of a job in-process: wall time, CPU, and its SQL statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    meter = common.LocalCpuMeter(DATABASE)
    meter.start()
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as captured:
        began = time.perf_counter()
        result = function()
        elapsed = time.perf_counter() - began
    cpu = meter.stop()
    queries = _queries(captured.captured_queries)
    return {
        "s": round(elapsed, 3),
        "result": result,
        "cpu": cpu,
        "queries": len(queries),
        "sql_ms": round(sum(query["ms"] for query in queries), 1),
        "slowest_queries": _top(queries),
        "_queries_full": queries,
    }


def explain(sql: str) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of one captured statement (values inlined, as Django sends it), rolled back."""
    if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
        return {"skipped": "not a SELECT"}
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        conn.execute("SET LOCAL statement_timeout = '120s'")
        text = "\n".join(row[0] for row in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall())
        conn.rollback()
    execution = re.search(r"Execution Time: ([\d.]+) ms", text)
    return {"sql": sql, "plan": text, "execution_ms": float(execution.group(1)) if execution else None}


def tallies_measure(t0_steady) -> dict:
    """The first (catch-up) run, the rest of the backlog, then one steady-state run after new decisions."""
    from exceptions_app.services.tallies import tallies_advance

    first = job_measure(tallies_advance)
    print(f"  tallies_advance (first, catch-up): {first['s']} s, {first['result']}", file=sys.stderr)
    runs, began, totals = 1, time.perf_counter(), dict(first["result"])
    for _ in range(CATCH_UP_MAX_RUNS):
        done = tallies_advance()
        runs += 1
        totals = {key: totals[key] + value for key, value in done.items()}
        if not any(done.values()):
            break
    rest = time.perf_counter() - began
    print(f"  tallies caught up after {runs} runs (+{rest:.1f} s): {totals}", file=sys.stderr)
    from exceptions_app.models import Principal, Workflow

    workflows = list(Workflow.objects.order_by("id").values_list("id", "current_policy_id"))
    agent = Principal.objects.get(user__username=AGENT).pk
    with psycopg.connect(common.database_url(DATABASE), autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            STEADY_DECISIONS_SQL,
            {
                "t0": t0_steady,
                "count": STEADY_DECISIONS,
                "agent": agent,
                "workflows": [workflow for workflow, _ in workflows],
                "versions": [version for _, version in workflows],
            },
        )
        for table in ("decisionhourly", "resolutionhourly", "deliveryhourly"):
            conn.execute(f"ANALYZE exceptions_app_{table}")
    steady = job_measure(tallies_advance)
    print(f"  tallies_advance (steady, +{STEADY_DECISIONS} decisions): {steady['s']} s", file=sys.stderr)
    return {
        "first": first,
        "catch_up": {"runs": runs, "rows": totals, "s_after_first": round(rest, 1)},
        "steady": steady,
    }


def snapshots_measure() -> dict:
    from exceptions_app.services.snapshots import snapshots_take

    runs = [job_measure(snapshots_take) for _ in range(SNAPSHOT_RUNS)]
    seconds = [run["s"] for run in runs]
    print(f"  snapshots_take x{SNAPSHOT_RUNS}: {seconds} s", file=sys.stderr)
    return {"runs": runs, "first_s": seconds[0], "median_s": statistics.median(seconds), "max_s": max(seconds)}


def pages_measure(item_pages: list[int], repeat: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    users = {user.username: user for user in get_user_model().objects.filter(username__in=["alice", "supervisor"])}
    clients = {}
    for role, username in (("operator", "alice"), ("supervisor", "supervisor")):
        clients[role] = Client()
        clients[role].force_login(users[username])
    anonymous = Client()
    # What the bench built so far (its load, jobs and results) would otherwise be scanned by every full
    # collection during the requests; a server worker's long-lived objects are likewise old and few.
    gc.collect()
    gc.freeze()
    results: dict = {}
    plan = [(name, path, headers, role) for name, path, headers in CONSOLE_PAGES for role in ("operator", "supervisor")]
    plan += [(name, path, headers, "supervisor") for name, path, headers in DASHBOARD_PAGES]
    for name, path, headers, role in plan:
        client = anonymous if name == "metrics" else clients[role]

        def path_for(index: int, path: str = path) -> str:
            return path.format(item=item_pages[index % len(item_pages)])

        figures = page_measure(client, path_for, headers, repeat)
        results[f"{name}/{role}"] = {
            "name": name,
            "role": role,
            "path": path,
            "first_path": path_for(0),
            "headers": headers,
            **figures,
        }
        print(
            f"  {name} as {role}: p50 {figures['p50_ms']} / p95 {figures['p95_ms']} ms, {figures['queries']} queries",
            file=sys.stderr,
        )
    return results, {**clients, "anonymous": anonymous}


# --- one size -----------------------------------------------------------------------------------------------------


def size_run(size: int, args, env: dict, state: dict) -> dict:
    steps: dict = {}
    print(f"\n== {size:,} items: database {DATABASE}", file=sys.stderr)
    reused = args.reuse and _items_in_database() == size
    if state.get("django"):
        django_close()
    if not reused:
        database_prepare(env, steps)
    common.redis_flush(REDIS_DB)
    if not state.get("django"):
        state["staticfiles"] = django_setup(env)
        state["django"] = True
    fixtures = fixtures_create()
    if reused:
        load = {"reused": True}
        with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
            load["item_pages"] = [
                row[0]
                for row in conn.execute(
                    "SELECT item_id FROM exceptions_app_auditevent WHERE action = 'lease_renewed' "
                    "GROUP BY item_id ORDER BY item_id LIMIT %s",
                    (ITEM_PAGES,),
                )
            ]
    else:
        print(f"loading {size:,} items", file=sys.stderr)
        load = timed("load", steps, dataset_load, fixtures, size, args.snapshot_days, steps)
    described = dataset_describe(load["item_pages"])
    print(f"  {described['rows']}", file=sys.stderr)
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        t0_steady = conn.execute("SELECT now()").fetchone()[0]
    jobs = {"tallies": tallies_measure(t0_steady) if not reused else None, "snapshots": snapshots_measure()}
    if reused:
        from exceptions_app.services.tallies import tallies_advance

        jobs["tallies"] = {"steady": job_measure(tallies_advance)}
    with psycopg.connect(common.database_url(DATABASE), autocommit=True, connect_timeout=10) as conn:
        conn.execute("ANALYZE exceptions_app_queuesnapshot")
    run = {
        "size": size,
        "reused": reused,
        "migrations": migrations_applied(),
        "load_steps": steps,
        "load": load,
        "dataset": described,
        "jobs": jobs,
    }
    run["pages"], clients = pages_measure(load["item_pages"], args.repeat)
    misses_explain(run, clients)
    return run


def source_digest() -> str:
    """SHA-256 over the application's sources (Python, templates, migrations): the run records it at start and end,
    since the code it measures is the code imported at start and the tree may change while it runs."""
    import hashlib

    digest = hashlib.sha256()
    for folder in ("exceptions_app", "review", "templates"):
        for path in sorted((common.ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".html"}:
                digest.update(path.relative_to(common.ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def migrations_applied() -> list[str]:
    with psycopg.connect(common.database_url(DATABASE), connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT app || '.' || name FROM django_migrations WHERE app IN ('exceptions_app', 'review')"
        )
        return sorted(row[0] for row in rows)


def _items_in_database() -> int | None:
    try:
        return common.sql_scalar(DATABASE, "SELECT count(*) FROM exceptions_app_exceptionitem")
    except psycopg.Error:
        return None


# --- report -------------------------------------------------------------------------------------------------------


def _label(size: int) -> str:
    return f"{size // 1000:,}k items" if size < 1_000_000 else f"{size / 1_000_000:g}M items"


def _result(ok: bool, gating: bool) -> str:
    return ("PASS" if ok else "FAIL") if gating else ("(ok)" if ok else "(over)")


def _cpu_text(figures: dict) -> str:
    gc_pauses = figures["gc"]
    full = (
        f"; {gc_pauses['full_collections']} full gc, max {gc_pauses['max_full_ms']:.0f} ms"
        if gc_pauses["full_collections"]
        else ""
    )
    return (
        f"cpu app {figures['app_cpu_ms_per_request']} + db {figures['db_cpu_ms_per_request']} ms/req; "
        f"others {figures['cpu']['other_cores']} cores{full}"
    )


def _job_text(run: dict) -> str:
    cpu = run["cpu"]
    return (
        f"{run['s']:.3f} s, {run['queries']} stmts ({run['sql_ms']:.0f} ms SQL); cpu app {cpu['own_cpu_s']} + "
        f"db {cpu['postgres_cpu_s']} s; others {cpu['other_cores']} cores"
    )


def rows_build(runs: list[dict], console_size: int, dashboard_size: int) -> list[dict]:
    rows = []
    for run in runs:
        size, workload = run["size"], _label(run["size"])
        for key, figures in run["pages"].items():
            dashboard = figures["name"] in {name for name, _, _ in DASHBOARD_PAGES}
            target_ms = DASHBOARD_TARGET_MS if dashboard else PAGE_TARGET_MS
            gating = size == (dashboard_size if dashboard else console_size)
            ok = figures["p95_ms"] < target_ms
            figures["target_ms"], figures["gating"], figures["ok"] = target_ms, gating, ok
            rows.append(
                {
                    "name": f"page.{key}",
                    "workload": f"{workload}, {figures['requests']} req",
                    "figure": f"p50 {figures['p50_ms']:.1f} / p95 {figures['p95_ms']:.1f} ms, {figures['queries']} "
                    f"queries ({figures['captured_sql_ms']:.0f} ms SQL); {_cpu_text(figures)}",
                    "target": f"p95 < {target_ms:g} ms" if gating else f"(p95 < {target_ms:g} ms)",
                    "result": _result(ok, gating),
                }
            )
        jobs = run["jobs"]
        snapshots = jobs["snapshots"]
        rows.append(
            {
                "name": "job.snapshots_take",
                "workload": f"{workload}, {SNAPSHOT_RUNS} runs",
                "figure": f"first {snapshots['first_s']:.3f} / median {snapshots['median_s']:.3f} / max "
                f"{snapshots['max_s']:.3f} s; " + _job_text(snapshots["runs"][0]).split("; ", 1)[1],
                "target": f"max < {TICK_TARGET_S:g} s" if size == dashboard_size else f"(max < {TICK_TARGET_S:g} s)",
                "result": _result(snapshots["max_s"] < TICK_TARGET_S, size == dashboard_size),
            }
        )
        tallies = jobs["tallies"]
        if "first" in tallies:
            catch_up = tallies["catch_up"]
            rows.append(
                {
                    "name": "job.tallies_advance.first",
                    "workload": f"{workload}, backlog {sum(catch_up['rows'].values()):,} rows",
                    "figure": f"{_job_text(tallies['first'])}; rows {tallies['first']['result']}",
                    "target": "(report: catch-up)",
                    "result": "(info)",
                }
            )
            rows.append(
                {
                    "name": "job.tallies_advance.catch_up",
                    "workload": workload,
                    "figure": f"{catch_up['runs']} runs, {catch_up['s_after_first']} s after the first",
                    "target": "(report)",
                    "result": "(info)",
                }
            )
        steady = tallies["steady"]
        rows.append(
            {
                "name": "job.tallies_advance.steady",
                "workload": f"{workload}, +{STEADY_DECISIONS:,} decisions",
                "figure": f"{_job_text(steady)}; rows {steady['result']}",
                "target": f"< {TICK_TARGET_S:g} s" if size == dashboard_size else f"(< {TICK_TARGET_S:g} s)",
                "result": _result(steady["s"] < TICK_TARGET_S, size == dashboard_size),
            }
        )
    return rows


def summary_build(runs: list[dict], repeat: int) -> list[dict]:
    """The suite's rows: the slowest console page and the slowest dashboard page (by p95) and the snapshot tick,
    per size; gated at the size their target names (issues 5 and 7), reported at the other."""
    dashboard_pages = {name for name, _, _ in DASHBOARD_PAGES}
    rows = []
    for run in runs:
        size, label = run["size"], _label(run["size"])
        for kind, target_ms, gated_at in (
            ("console", PAGE_TARGET_MS, CONSOLE_SIZE),
            ("dashboard", DASHBOARD_TARGET_MS, DASHBOARD_SIZE),
        ):
            pages = [
                (figures["p95_ms"], key)
                for key, figures in run["pages"].items()
                if (figures["name"] in dashboard_pages) == (kind == "dashboard")
            ]
            if not pages:
                continue
            p95, key = max(pages)
            gating = size == gated_at
            rows.append(
                common.summary_row(
                    f"pages.{kind}",
                    f"{label}, {len(pages)} pages x {repeat} req",
                    f"slowest p95 {p95:.0f} ms ({key})",
                    f"p95 < {target_ms:g} ms" if gating else f"(p95 < {target_ms:g} ms at {_label(gated_at)})",
                    met=p95 < target_ms if gating else None,
                )
            )
        tick = run["jobs"]["snapshots"]["max_s"]
        gating = size == DASHBOARD_SIZE
        rows.append(
            common.summary_row(
                "pages.snapshot_tick",
                f"{label}, {SNAPSHOT_RUNS} runs",
                f"max {tick:.2f} s",
                f"< {TICK_TARGET_S:g} s" if gating else f"(< {TICK_TARGET_S:g} s at {_label(DASHBOARD_SIZE)})",
                met=tick < TICK_TARGET_S if gating else None,
            )
        )
    return rows


def _worth_explaining(queries: list[dict], limit: int = 3, floor_ms: float = 10.0) -> list[dict]:
    """The slowest SELECT, and the next ones if they took at least ``floor_ms``."""
    selects = [query for query in queries if query["sql"].lstrip().upper().startswith(("SELECT", "WITH"))]
    ordered = sorted(selects, key=lambda query: -query["ms"])
    return ordered[:1] + [query for query in ordered[1:limit] if query["ms"] >= floor_ms]


def misses_explain(run: dict, clients: dict) -> None:
    """While the size's database exists: for each page that missed its target (at either size), EXPLAIN
    (ANALYZE, BUFFERS) of its slowest statements and a profile of one request (where the Python time goes);
    EXPLAIN for each job run over the tick target. Then drop the captured statements."""
    dashboard_pages = {name for name, _, _ in DASHBOARD_PAGES}
    for figures in run["pages"].values():
        full = figures.pop("_queries_full")
        target = DASHBOARD_TARGET_MS if figures["name"] in dashboard_pages else PAGE_TARGET_MS
        if figures["p95_ms"] >= target:
            figures["explain"] = [
                {"captured_ms": query["ms"], **explain(query["sql"])} for query in _worth_explaining(full)
            ]
            client = clients["anonymous" if figures["name"] == "metrics" else figures["role"]]
            figures["profile"] = profile_request(client, figures["first_path"], figures["headers"])
    for job in _jobs_of(run):
        full = job.pop("_queries_full", [])
        if job["s"] >= TICK_TARGET_S:
            job["explain"] = [
                {"captured_ms": query["ms"], **explain(query["sql"])} for query in _worth_explaining(full)
            ]


def profile_request(client, path: str, headers: dict, lines: int = 30) -> str:
    """cProfile of one request: the functions with the most cumulative time."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    client.get(path, headers=headers)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(lines)
    text = out.getvalue()
    return text[text.find("   ncalls") :] if "   ncalls" in text else text


def plan_compact(plan: str, lines: int = 40) -> str:
    """A plan for the terminal: long lines cut, at most ``lines`` lines (the JSON keeps the whole plan)."""
    shown = [line if len(line) <= 160 else line[:157] + "..." for line in plan.splitlines()]
    return "\n".join(
        shown[:lines] + ([f"... ({len(shown) - lines} more lines in pages.json)"] if len(shown) > lines else [])
    )


def _jobs_of(run: dict) -> list[dict]:
    tallies = run["jobs"]["tallies"]
    return [*run["jobs"]["snapshots"]["runs"], *(tallies[key] for key in ("first", "steady") if key in tallies)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 items only (full: 100,000, then 1,000,000)")
    parser.add_argument("--sizes", help="comma-separated item counts (overrides the mode's)")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page (after 3 warm-up ones)")
    parser.add_argument("--snapshot-days", type=int, default=3, help="days of per-minute queue snapshots to load")
    parser.add_argument("--reuse", action="store_true", help="keep a database an earlier run loaded (same size)")
    args = parser.parse_args()
    sizes = (
        [int(value) for value in args.sizes.split(",")]
        if args.sizes
        else ([CONSOLE_SIZE] if args.quick else [CONSOLE_SIZE, DASHBOARD_SIZE])
    )
    env = bench_env()
    state: dict = {}
    began, load_before = time.time(), os.getloadavg()
    code = {"revision_at_start": common.code_revision(), "sources_at_start": source_digest()}
    runs = [size_run(size, args, env, state) for size in sizes]
    code.update(revision_at_end=common.code_revision(), sources_at_end=source_digest())
    code["changed_during_run"] = code["sources_at_start"] != code["sources_at_end"]
    rows = rows_build(runs, CONSOLE_SIZE, DASHBOARD_SIZE)
    if code["changed_during_run"]:
        print("WARNING: the application sources changed while this ran; it measured those at start", file=sys.stderr)
        rows.append(
            {
                "name": "code.changed_during_run",
                "workload": f"{code['revision_at_start']} -> {code['revision_at_end']}",
                "figure": "sources changed while the benchmark ran: figures are for the code imported at start",
                "target": "unchanged",
                "result": "(warn)",
            }
        )
    common.table_print(rows)
    for run in runs:
        for key, figures in run["pages"].items():
            for entry in figures.get("explain", []):
                print(f"\nEXPLAIN for page.{key} at {_label(run['size'])} ({entry['captured_ms']} ms captured):")
                print(plan_compact(entry.get("plan", entry.get("skipped", ""))))
            if "profile" in figures:
                print(f"\nprofile of one request, page.{key} at {_label(run['size'])}:")
                print("\n".join(figures["profile"].splitlines()[:25]))
    path = common.results_write(
        "pages",
        {
            "benchmark": "pages",
            "mode": "quick" if args.quick else "full",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
            "duration_s": round(time.time() - began, 1),
            "machine": {
                **common.machine_info(DATABASE),
                "loadavg_at_start": load_before,
                "loadavg_at_end": os.getloadavg(),
            },
            "server_settings": server_settings(),
            "staticfiles_storage": state.get("staticfiles"),
            "code": code,
            "parameters": {**vars(args), "sizes": sizes, "warmup": WARMUP, "chunk": CHUNK},
            "targets": {
                "console_p95_ms": PAGE_TARGET_MS,
                "console_at_items": CONSOLE_SIZE,
                "dashboard_p95_ms": DASHBOARD_TARGET_MS,
                "dashboard_at_items": DASHBOARD_SIZE,
                "tick_s": TICK_TARGET_S,
            },
            "runs": runs,
            "rows": rows,
            "summary": summary_build(runs, args.repeat),
        },
    )
    return common.results_exit_code(path, rows)


if __name__ == "__main__":
    sys.exit(main())
