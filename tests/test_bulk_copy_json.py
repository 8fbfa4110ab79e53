"""JSON written by the batch path's COPY (encoded by orjson) reads back exactly as the single path's (Django)."""

import pytest

from exceptions_app.models import AuditEvent, ExceptionItem, GateDecision
from tests.fixtures.gate import decision_body

# Values where encoders differ: non-ASCII, escapes COPY must carry, floats and integers at the edges (intake
# refuses integers beyond 64 bits), deep nesting, empty containers.
AWKWARD = {
    "text": 'tab\there, newline\nthere, back\\slash, "quotes", caf\u00e9 \u65e5\u672c \U0001f600',
    "floats": [0.1, 1e-07, 1.7976931348623157e308, -0.0, 123456789.123456789],
    "big": [2**63 - 1, -(2**63)],
    "nested": {"a": [{"b": [[], {}, None, True, False]}]},
    "empty": "",
}


@pytest.mark.parametrize("held", [False, True])
def test_batched_json_reads_back_like_the_single_paths(agent_client, held):
    confidence = 0.5 if held else 0.99
    body = decision_body(confidence=confidence, context=AWKWARD, input={"invoice_total": 5000.0, "x": AWKWARD})
    single = agent_client.post("/api/v1/decisions", body, format="json")
    # Two entries: bulk_copy writes a single row with an INSERT, and this is about COPY.
    batch = agent_client.post("/api/v1/decisions/batch", {"decisions": [body, body]}, format="json")
    assert single.status_code == 200, single.json()
    assert batch.status_code == 200
    assert batch.json()["recorded"] == 2
    one, many, _ = GateDecision.objects.order_by("id")
    for field in ("output", "input", "context", "reasons"):
        assert getattr(many, field) == getattr(one, field), field
    # jsonb keeps numbers as numeric (1.79e308 reads back as an int, -0.0 as 0.0) on both paths alike.
    assert many.context["text"] == AWKWARD["text"]
    assert many.context["nested"] == AWKWARD["nested"]
    assert many.context["big"] == [2**63 - 1, -(2**63)]
    if held:
        first, second, _ = ExceptionItem.objects.order_by("id")
        for field in ("proposal", "input", "context", "reasons"):
            assert getattr(second, field) == getattr(first, field), field
        raised = AuditEvent.objects.filter(action="raised").order_by("id")
        first_payload, second_payload, _ = (event.payload for event in raised)
        assert first_payload == second_payload


def test_a_batch_writes_its_outbox_rows_with_the_decisions_payloads(agent_client):
    # Proceeds with a callback get one delivery each, written by COPY with the batch (issue 25).
    from exceptions_app.models import Delivery

    bodies = [
        decision_body(confidence=0.99, callback_url="http://127.0.0.1:9/hook", context=AWKWARD, correlation_id=f"c-{n}")
        for n in range(3)
    ]
    response = agent_client.post("/api/v1/decisions/batch", {"decisions": bodies}, format="json")

    assert response.json()["recorded"] == 3
    deliveries = list(Delivery.objects.select_related("decision").order_by("id"))
    assert len(deliveries) == 3
    assert len({delivery.public_id for delivery in deliveries}) == 3
    for delivery in deliveries:
        assert delivery.payload["decision_id"] == delivery.decision_id
        assert delivery.payload["delivery_id"] == delivery.public_id
        assert delivery.payload["final_output"] == delivery.decision.output
        assert delivery.target == "http://127.0.0.1:9/hook"
