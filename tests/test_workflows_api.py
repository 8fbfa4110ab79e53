"""Supervisors create and update workflow policies through PUT/GET /api/v1/workflows/{name}."""

import pytest

from exceptions_app.models import PolicyVersion, Queue, Workflow
from tests.fixtures.gate import BILLING, billing_document, client_for

pytestmark = pytest.mark.django_db


def url(name: str = BILLING) -> str:
    return f"/api/v1/workflows/{name}"


def test_put_creates_a_workflow_with_version_one_and_its_queues(supervisor_client):
    response = supervisor_client.put(url(), billing_document(), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["version"] == 1
    workflow = Workflow.objects.get(name=BILLING)
    assert workflow.webhook_secret.startswith("whsec_")
    assert set(Queue.objects.values_list("name", flat=True)) == {"billing", "billing-senior"}


def test_put_of_an_unchanged_policy_publishes_nothing(supervisor_client):
    supervisor_client.put(url(), billing_document(), format="json")

    response = supervisor_client.put(url(), billing_document(), format="json")

    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert PolicyVersion.objects.count() == 1


def test_put_of_a_changed_policy_publishes_the_next_version_and_keeps_the_old(supervisor_client):
    supervisor_client.put(url(), billing_document(), format="json")

    response = supervisor_client.put(url(), billing_document(sla_seconds=600), format="json")

    assert response.json()["version"] == 2
    assert supervisor_client.get(url()).json()["policy"]["sla_seconds"] == 600
    assert PolicyVersion.objects.get(version=1).document["sla_seconds"] == 3600


def test_an_invalid_rule_is_refused_with_its_code_and_the_parsers_message(supervisor_client):
    rules = [{"code": "broken", "when": "output.amount >>> 3", "severity": "high"}]

    response = supervisor_client.put(url(), billing_document(rules=rules), format="json")

    assert response.status_code == 400
    field = response.json()["error"]["fields"][0]
    assert (field["rule"], field["path"]) == ("broken", "rules[0].when")
    assert "Syntax error" in field["message"]
    assert not Workflow.objects.exists()


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"output_schema": {"type": "nonsense"}}, "output_schema.type"),
        ({"thresholds": {"auto_approve": 0.5, "auto_reject": 0.6}}, "thresholds.auto_reject"),
        ({"sla_seconds": 0}, "sla_seconds"),
        ({"unknown_key": 1}, ""),
        ({"rules": [{"code": "typo", "when": "ouput.amount > 1.0", "severity": "low"}]}, "rules[0].when"),
    ],
)
def test_invalid_policies_are_400_naming_the_path(supervisor_client, changes, path):
    response = supervisor_client.put(url(), billing_document(**changes), format="json")

    assert response.status_code == 400
    assert path in {field["path"] for field in response.json()["error"]["fields"]}
    assert not PolicyVersion.objects.exists()


def test_comprehension_variables_are_not_mistaken_for_unknown_ones(supervisor_client):
    rules = [
        {
            "code": "negative_line",
            "when": "has(output.lines) && output.lines.exists(l, l.amount < 0.0)",
            "severity": "low",
        }
    ]

    assert supervisor_client.put(url(), billing_document(rules=rules), format="json").status_code == 201


def test_a_body_naming_another_workflow_is_400(supervisor_client):
    response = supervisor_client.put(url(), billing_document(workflow="other.flow"), format="json")

    assert response.status_code == 400
    assert not Workflow.objects.exists()


def test_unknown_workflow_is_404(supervisor_client):
    assert supervisor_client.get(url("no.such")).status_code == 404


@pytest.mark.parametrize("role", ["agent", "operator"])
def test_only_supervisors_manage_policies(billing_workflow, role):
    client = client_for(f"someone-{role}", role, **({"workflows": [BILLING]} if role == "agent" else {}))

    assert client.get(url()).status_code == 403
    assert client.put(url(), billing_document(sla_seconds=5), format="json").status_code == 403
    assert PolicyVersion.objects.count() == 1


def test_the_openapi_schema_describes_every_agent_endpoint(supervisor_client):
    response = supervisor_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/decisions",
        "/api/v1/decisions/batch",
        "/api/v1/exceptions",
        "/api/v1/exceptions/{item_id}",
        "/api/v1/exceptions/{item_id}/cancel",
        "/api/v1/workflows/{name}",
    ]:
        assert path in paths, path
