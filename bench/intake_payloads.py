"""What agents send to the gate, at three sizes (issue 25), for bench/intake.py.

- ``small``: the billing adjustment the intake benchmark always sent (a two-key context, no trace), ~0.5 KB;
- ``typical``: the same with what a reviewer needs to see: the invoice's fields, 10 line items in the context and
  a short trace of the tool calls that led to the output, ~2 KB;
- ``large``: ``typical`` with ~20 KB of trace (32 tool calls with their arguments and results).

``typical`` and ``large`` ask for a callback, so a proceed verdict also writes an outbox row (a delivery).

Each is made for one verdict: ``proceed`` (confident, no rule fires) or ``hold`` (confidence between the
policy's thresholds). The text is drawn from a vocabulary, not repeated, so TOAST compresses it as it would
real text rather than a run of one string.
"""

import random

WORKFLOW = "billing.invoice_adjustment"
PROFILES = ("small", "typical", "large")
VERDICTS = ("proceed", "hold")
# Entries per batch: 1,000 (the API's maximum) unless that would pass the 5 MiB default body limit.
BATCH_SIZE = {"small": 1000, "typical": 1000, "large": 200}

_WORDS = (
    "invoice",
    "customer",
    "credit",
    "refund",
    "account",
    "billing",
    "period",
    "service",
    "outage",
    "hours",
    "seat",
    "tier",
    "plan",
    "annual",
    "monthly",
    "usage",
    "overage",
    "discount",
    "contract",
    "renewal",
    "charge",
    "tax",
    "region",
    "support",
    "ticket",
    "agent",
    "escalation",
    "approved",
    "policy",
    "amount",
    "currency",
    "ledger",
    "entry",
    "reference",
    "balance",
    "adjustment",
    "partial",
    "prorated",
    "migration",
    "storage",
    "compute",
    "bandwidth",
    "license",
    "term",
    "notice",
    "schedule",
    "payment",
    "method",
    "card",
    "transfer",
    "failed",
    "retried",
    "posted",
)
_TOOLS = ("invoice_lookup", "customer_history", "contract_terms", "usage_report", "ledger_search", "ticket_read")


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _line_items(rng: random.Random, count: int) -> list[dict]:
    return [
        {
            "sku": f"SKU-{rng.randint(0, 99999):05d}",
            "description": _text(rng, 3),
            "quantity": rng.randint(1, 40),
            "unit_price": round(rng.uniform(1, 400), 2),
        }
        for _ in range(count)
    ]


def _trace(rng: random.Random, steps: int, result_words: int) -> list[dict]:
    return [
        {
            "step": step,
            "tool": rng.choice(_TOOLS),
            "arguments": {"invoice_id": f"INV-{rng.randint(0, 10**9)}", "query": _text(rng, 4)},
            "result": _text(rng, result_words),
            "ms": rng.randint(20, 900),
        }
        for step in range(steps)
    ]


def billing_body(
    rng: random.Random,
    serial: int,
    *,
    kind: str,
    currency: str,
    amount: float,
    confidence: float,
    invoice_currency: str,
) -> dict:
    """The billing adjustment the intake benchmark has always sent (the ``small`` profile)."""
    parts = rng.randint(1, 3)
    lines = [{"description": f"line {n + 1} of {kind}", "amount": round(amount / parts, 2)} for n in range(parts)]
    return {
        "workflow": WORKFLOW,
        "confidence": round(confidence, 3),
        "output": {
            "invoice_id": f"INV-{2025_000_000 + serial}",
            "type": kind,
            "amount": amount,
            "currency": currency,
            "reason": f"{kind} requested by customer: service outage on {serial % 28 + 1:02d} March",
            "lines": lines,
        },
        "input": {"invoice_total": round(amount * rng.uniform(1.2, 4.0), 2), "currency": invoice_currency},
        "context": {"customer_id": f"C-{serial % 5000:05d}", "channel": rng.choice(["email", "chat", "portal"])},
        "correlation_id": f"bench-{serial}",
        "value_at_risk": f"{amount:.2f}",
    }


def decision(rng: random.Random, serial: int, *, profile: str, verdict: str) -> dict:
    """One decision body of ``profile`` that the billing policy answers with ``verdict``."""
    kind, currency = rng.choice(["credit", "refund", "rerate"]), rng.choice(["USD", "EUR", "GBP"])
    amount = round(rng.uniform(5, 2500), 2)
    confidence = rng.uniform(0.95, 0.999) if verdict == "proceed" else rng.uniform(0.40, 0.89)
    body = billing_body(
        rng, serial, kind=kind, currency=currency, amount=amount, confidence=confidence, invoice_currency=currency
    )
    body["correlation_id"] = f"bench-{profile}-{verdict}-{serial}"
    if profile == "small":
        return body
    body["input"].update(
        customer_name=_text(rng, 2).title(), issued_at="2026-03-01", due_at="2026-03-31", terms="net 30"
    )
    body["context"]["line_items"] = _line_items(rng, 10)
    body["model_version"] = "billing-agent-2026.03"
    body["callback_url"] = "http://127.0.0.1:9/tollgate-callback"  # the outbox: proceeds are delivered to it
    body["trace"] = _trace(rng, 3, 6) if profile == "typical" else _trace(rng, 32, 60)
    return body
