"""Every error of the agent API: a clear 4xx in one shape, and nothing written."""

import pytest
from rest_framework.test import APIClient

from exceptions_app.models import AuditEvent, ExceptionItem, GateDecision
from exceptions_app.services.policies import policy_publish
from tests.fixtures.gate import billing_document, client_for, decision_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/decisions"


@pytest.fixture(autouse=True)
def _nothing_written_after(request):
    yield
    if "no_write_check" not in request.keywords:
        assert not GateDecision.objects.exists()
        assert not ExceptionItem.objects.exists()
        assert not AuditEvent.objects.filter(item__isnull=False).exists()


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["status"] == status
    assert error["code"] == code
    assert error["message"]
    return error


def test_unknown_workflow_is_404(agent_client):
    error = assert_error(agent_client.post(URL, decision_body(workflow="no.such"), format="json"), 404, "not_found")
    assert error["fields"][0]["path"] == "workflow"


def test_a_workflow_outside_the_tokens_scope_is_403(agent_client):
    policy_publish(document=billing_document(workflow="routing.other"), source="file")

    error = assert_error(
        agent_client.post(URL, decision_body(workflow="routing.other"), format="json"), 403, "forbidden"
    )
    assert "routing.other" in error["message"]


def test_malformed_json_is_400(agent_client):
    response = agent_client.generic("POST", URL, '{"workflow": "billing', content_type="application/json")
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": "high"}, "confidence"),
        ({"confidence": None}, "confidence"),
        ({"value_at_risk": "-3"}, "value_at_risk"),
        ({"callback_url": "not a url"}, "callback_url"),
        ({"correlation_id": "x" * 201}, "correlation_id"),
        ({"workflow": ""}, "workflow"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(agent_client, changes, path):
    error = assert_error(agent_client.post(URL, decision_body(**changes), format="json"), 400, "validation_error")
    assert path in {field["path"] for field in error["fields"]}


def test_missing_required_fields_are_each_named(agent_client):
    error = assert_error(agent_client.post(URL, {}, format="json"), 400, "validation_error")
    assert {"workflow", "output", "confidence"} <= {field["path"] for field in error["fields"]}


def test_a_body_that_is_not_an_object_is_400(agent_client):
    assert_error(agent_client.post(URL, [1, 2], format="json"), 400, "validation_error")


def test_no_token_is_401(billing_workflow):
    response = APIClient().post(URL, decision_body(), format="json")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer tg_nothere_secret", "Bearer garbage", "Bearer tg_"])
def test_forged_tokens_are_401(billing_workflow, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.post(URL, decision_body(), format="json"), 401, "not_authenticated")


def test_a_revoked_token_is_401(agent_client):
    token = agent_client.principal.tokens.get()
    from exceptions_app.services.tokens import token_revoke

    token_revoke(token=token)
    assert_error(agent_client.post(URL, decision_body(), format="json"), 401, "not_authenticated")


def test_an_operator_token_cannot_submit_decisions(billing_workflow):
    operator = client_for("olga", "operator", teams=["billing"])
    assert_error(operator.post(URL, decision_body(), format="json"), 403, "forbidden")


def test_an_oversized_body_is_413(agent_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = agent_client.post(URL, decision_body(context={"blob": "x" * 4096}), format="json")
    assert_error(response, 413, "request_too_large")


def test_rate_limit_is_429_with_retry_after(agent_client, settings):
    from django.core.cache import cache

    cache.clear()
    settings.TOLLGATE_RATE_LIMIT_PER_MINUTE = 2
    agent_client.post(URL, {}, format="json")
    agent_client.post(URL, {}, format="json")
    response = agent_client.post(URL, decision_body(), format="json")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60


def test_wrong_method_is_405(agent_client):
    assert_error(agent_client.get(URL), 405, "method_not_allowed")


def test_a_too_long_idempotency_key_is_400(agent_client):
    response = agent_client.post(URL, decision_body(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert_error(response, 400, "validation_error")
