"""What schemathesis found (tests/test_api_fuzz.py), each pinned as a plain request and its answer.

Every answer here must be a 4xx in the API's one error shape: the fuzzer first met each of these
requests as a 500 or as a response the schema did not describe.
"""

import json

import pytest
from django.core.management import call_command

from tests.fixtures.gate import BILLING, billing_document, hold

pytestmark = pytest.mark.django_db
BIGINT_MAX = 2**63 - 1


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert error["message"]
    assert isinstance(error["fields"], list)
    return error


def test_an_unrouted_api_path_is_a_json_404_not_the_html_page(operator_client):
    # A negative id or a queue name that is not a slug matches no route; Django answered with HTML.
    assert_error(operator_client.post("/api/v1/exceptions/-4/claim", {}, format="json"), 404, "not_found")
    assert_error(operator_client.get("/api/v1/queues/n%C3%B6%20slug"), 404, "not_found")
    assert_error(operator_client.get("/api/v1/no-such-endpoint"), 404, "not_found")
    # A newline in the path escaped a catch-all written as ``.*``.
    assert_error(operator_client.get("/api/v1/exceptions/%3E%0A/timeline"), 404, "not_found")


def test_a_resolutions_cursor_past_the_largest_id_is_a_400(agent_client):
    # The cursor went straight into a bigint comparison: PostgreSQL refused it and the API said 500.
    error = assert_error(agent_client.get("/api/v1/resolutions", {"after": BIGINT_MAX + 1}), 400, "validation_error")
    assert error["fields"][0]["path"] == "after"
    assert agent_client.get("/api/v1/resolutions", {"after": BIGINT_MAX}).status_code == 200


def _schema(tmp_path) -> dict:
    target = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(target))
    return json.loads(target.read_text())


def test_the_schema_describes_the_error_shape_as_a_component(tmp_path):
    schema = _schema(tmp_path)

    detail = schema["components"]["schemas"]["ErrorDetailOutput"]
    assert set(detail["required"]) == {"status", "code", "message", "fields"}
    workflow_get = schema["paths"]["/api/v1/workflows/{name}"]["get"]["responses"]
    # The workflow operations listed only some of their errors (no 400, 413 or 429 at all).
    assert {"400", "401", "403", "404", "409", "413", "429"} <= set(workflow_get)
    assert workflow_get["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOutput")


def test_the_schema_states_the_limits_the_server_enforces(tmp_path):
    """Requests the schema called valid and the server refused (schemathesis' positive-data check)."""
    schema = _schema(tmp_path)
    paths, components = schema["paths"], schema["components"]["schemas"]

    def parameter(path: str, method: str, name: str) -> dict:
        return next(p["schema"] for p in paths[path][method]["parameters"] if p["name"] == name)

    wait = parameter("/api/v1/exceptions/{item_id}", "get", "wait")
    assert (wait["minimum"], wait["maximum"]) == (0, 300)
    assert parameter("/api/v1/decisions", "post", "Idempotency-Key")["maxLength"] == 200
    assert components["CommentInput"]["properties"]["text"]["minLength"] == 1
    assert components["RedeliverInput"]["properties"]["delivery_ids"]["items"]["minLength"] == 1
    policy = paths["/api/v1/workflows/{name}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"thresholds", "queue", "sla_seconds", "output_schema"} == set(policy["required"])
    # The links the stateful fuzzing follows: submit, then read or claim the held item.
    links = paths["/api/v1/decisions"]["post"]["responses"]["200"]["links"]
    assert links["GetHeldItem"] == {
        "operationId": "exception_get",
        "parameters": {"item_id": "$response.body#/exception/id"},
    }


def test_a_workflow_name_with_a_nul_byte_is_a_404(supervisor_client):
    # The name went into a text comparison that PostgreSQL refuses (NUL cannot be stored in text): 500.
    assert_error(supervisor_client.get("/api/v1/workflows/billing%00x"), 404, "not_found")
    put = supervisor_client.put("/api/v1/workflows/billing%00x", billing_document(), format="json")
    assert_error(put, 400, "validation_error")


def test_a_visible_item_still_answers_200(agent_client, operator_client):
    """The guards above turn away only ids no row can have."""
    item_id = hold(agent_client)
    assert operator_client.get(f"/api/v1/exceptions/{item_id}").status_code == 200
    assert agent_client.get("/api/v1/exceptions", {"workflow": BILLING}).status_code == 200
