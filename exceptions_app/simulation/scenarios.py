"""Realistic agent outputs for the five demo workflows, with a model-like confidence spread and
a share of cases that break each rule, so every path of the gate shows up in a demo."""

import random
from datetime import date, timedelta

CARRIERS = ["DHLX", "UPSN", "FDXE", "GLSP", "DPDZ"]
HAZMAT_CARRIERS = ["DHLX", "FDXE"]
WAREHOUSES = {"AMS-1": 40, "RTM-2": 12, "HAM-3": 25}
SUPPLIERS = [
    ("Nordwind Logistik GmbH", "DE811223344", "DE89370400440532013000"),
    ("Atelier Lumen SARL", "FR40303265045", "FR7630006000011234567890189"),
    ("Polder Office Supplies BV", "NL123456789B01", "NL91ABNA0417164300"),
]
COUNTERPARTIES = ["ACME Retail", "Blue Harbour Ltd", "Kestrel Foods", "Orbit Telecom"]


def confidence(rng: random.Random) -> float:
    """Mostly near-certain, some doubt, and a thin tail of nonsense, as models tend to be."""
    draw = rng.random()
    if draw < 0.82:
        value = rng.betavariate(30, 1.0)
    elif draw < 0.97:
        value = rng.uniform(0.5, 0.92)
    else:
        value = rng.uniform(0.05, 0.4)
    return round(min(0.999, value), 3)


def _day(offset: int) -> str:
    return (date.today() + timedelta(days=offset)).isoformat()


def billing(rng: random.Random, number: int, breaking: bool) -> dict:
    amount = round(rng.uniform(15, 2500), 2)
    invoice_total = round(amount * rng.uniform(1.5, 8), 2)
    kind = rng.choice(["credit", "refund", "rerate"])
    case = rng.choice(["large", "over_invoice", "currency"]) if breaking else None
    if case == "large":
        amount = round(rng.uniform(12_000, 80_000), 2)
        invoice_total = amount * 3
    if case == "over_invoice":
        kind, invoice_total = "credit", round(amount * 0.6, 2)
    output = {
        "invoice_id": f"INV-{70000 + number}",
        "type": kind,
        "amount": amount,
        "currency": "USD" if case == "currency" else "EUR",
        "reason": rng.choice(["duplicate charge", "tariff change", "service outage credit", "goodwill"]),
    }
    return {
        "output": output,
        "input": {"invoice_total": invoice_total, "currency": "EUR", "customer": f"C-{number % 97}"},
        "value_at_risk": amount,
    }


def routing(rng: random.Random, number: int, breaking: bool) -> dict:
    estimate = round(rng.uniform(200, 1800), 2)
    warehouse = rng.choice(list(WAREHOUSES))
    hazardous = rng.random() < 0.15
    carrier = rng.choice(HAZMAT_CARRIERS if hazardous else CARRIERS)
    case = rng.choice(["cost", "hazmat", "late", "capacity"]) if breaking else None
    quoted = round(estimate * (rng.uniform(1.6, 2.4) if case == "cost" else rng.uniform(0.85, 1.2)), 2)
    if case == "hazmat":
        hazardous, carrier = True, "GLSP"
    pallets = WAREHOUSES[warehouse] + 5 if case == "capacity" else rng.randint(1, 10)
    output = {
        "shipment_id": f"SHP-{40000 + number}",
        "carrier": carrier,
        "service_level": rng.choice(["economy", "standard", "express"]),
        "warehouse": warehouse,
        "route": f"{warehouse}>{rng.choice(['BRU', 'PAR', 'MUC', 'MAD'])}",
        "quoted_cost": quoted,
        "currency": "EUR",
        "estimated_delivery": _day(5 if case == "late" else 2),
    }
    return {
        "output": output,
        "input": {"estimated_cost": estimate, "hazardous": hazardous, "pallets": pallets, "promised_delivery": _day(3)},
        "context": {"hazmat_certified_carriers": HAZMAT_CARRIERS, "warehouse_free_pallets": WAREHOUSES},
        "value_at_risk": quoted,
    }


def reconciliation(rng: random.Random, number: int, breaking: bool) -> dict:
    amount = round(rng.uniform(50, 25_000), 2)
    counterparty = rng.choice(COUNTERPARTIES)
    case = rng.choice(["tolerance", "split", "gap", "counterparty", "double"]) if breaking else None
    entries = [{"entry_id": f"GL-{90000 + number}", "amount": amount, "date": _day(-1), "counterparty": counterparty}]
    if case == "split":
        half = round(amount / 2, 2)
        entries = [
            {**entries[0], "amount": half},
            {**entries[0], "entry_id": f"GL-{90000 + number}b", "amount": amount - half},
        ]
    if case == "gap":
        entries[0]["date"] = _day(-9)
    if case == "counterparty":
        entries[0]["counterparty"] = "Unknown Trading Co"
    matched = round(sum(entry["amount"] for entry in entries) + (12.5 if case == "tolerance" else 0), 2)
    output = {
        "transaction_id": f"BTX-{30000 + number}",
        "entries": entries,
        "matched_total": matched,
        "currency": "EUR",
    }
    context = {"matched_entry_ids": [entries[0]["entry_id"]] if case == "double" else []}
    return {
        "output": output,
        "input": {"amount": amount, "booking_date": _day(-1), "counterparty_name": counterparty},
        "context": context,
        "value_at_risk": amount,
    }


def documents(rng: random.Random, number: int, breaking: bool) -> dict:
    supplier, vat, iban = rng.choice(SUPPLIERS)
    quantity, unit = rng.randint(1, 20), round(rng.uniform(5, 400), 2)
    line = round(quantity * unit, 2)
    tax = round(line * 0.21, 2)
    case = rng.choice(["missing", "totals", "field_confidence", "iban"]) if breaking else None
    output = {
        "document_type": "invoice",
        "supplier_name": supplier,
        "supplier_vat_id": vat,
        "invoice_number": f"{supplier[:3].upper()}-{2026}-{number:05d}",
        "invoice_date": _day(-3),
        "due_date": _day(27),
        "currency": "EUR",
        "subtotal": line,
        "tax_total": tax,
        "total": round(line + tax + (40 if case == "totals" else 0), 2),
        "iban": iban,
        "lines": [{"description": "Consulting services", "quantity": quantity, "unit_price": unit, "amount": line}],
    }
    if case == "missing":
        output["purchase_order"] = ""
    if case == "iban":
        output["iban"] = "GB33BUKB20201555555555"
    context = {
        "mandatory_fields": ["invoice_number", "total", "purchase_order"]
        if case == "missing"
        else ["invoice_number", "total"],
        "supplier_iban": iban,
        "field_confidence": {"total": 0.62 if case == "field_confidence" else 0.97, "iban": 0.95},
    }
    return {"output": output, "context": context, "value_at_risk": output["total"]}


def operations(rng: random.Random, number: int, breaking: bool) -> dict:
    case = rng.choice(["retries", "irreversible", "conflict", "skip"]) if breaking else None
    action = {"retries": "retry", "skip": "skip", "irreversible": "compensate"}.get(
        case, rng.choice(["retry", "compensate"])
    )
    output = {
        "run_id": f"run-{number:06d}",
        "step": rng.choice(["fetch_orders", "charge_card", "sync_crm", "send_email"]),
        "failed_tool": rng.choice(["erp.api", "stripe.charge", "crm.update"]),
        "error_class": "unknown" if case == "skip" else rng.choice(["timeout", "rate_limited", "upstream_error"]),
        "attempts": 5 if case == "retries" else rng.randint(1, 2),
        "proposed_action": action,
        "irreversible": case == "irreversible",
    }
    signals = [
        {"source": "erp", "status": "paid"},
        {"source": "psp", "status": "failed" if case == "conflict" else "paid"},
    ]
    return {
        "output": output,
        "input": {"signals": signals},
        "context": {"max_attempts": 3},
        "value_at_risk": round(rng.uniform(10, 5000), 2),
    }


SCENARIOS = {
    "billing.invoice_adjustment": billing,
    "routing.shipment_allocation": routing,
    "reconciliation.ledger_match": reconciliation,
    "documents.field_extraction": documents,
    "operations.exception_handling": operations,
}


def proposal(workflow: str, rng: random.Random, number: int, *, breaking_share: float = 0.12) -> dict:
    case = SCENARIOS[workflow](rng, number, rng.random() < breaking_share)
    return {
        "confidence": confidence(rng),
        "model_version": f"{workflow.split('.')[0]}-model-2026.11",
        "correlation_id": f"demo-{workflow.split('.')[0]}-{number}",
        **case,
    }


def true_error(confidence: float, *, shift: float = 0.0) -> float:
    """The ground truth of the demo: the chance an output is actually wrong, by its stated confidence
    (a slightly overconfident model: about 2% wrong at 0.95, 10% at 0.7). ``shift`` adds a drift."""
    return min(0.95, 0.015 + 0.9 * (1 - confidence) ** 2 + shift)
