import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from exceptions_app.models import ApiToken, Principal, Role

pytestmark = pytest.mark.django_db


def create_token(*args) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("create_token", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue().strip(), stderr.getvalue()


def test_create_token_prints_the_token_once_and_stores_only_its_hash(billing_workflow):
    raw, notice = create_token("billing-bot", "--role", "agent", "--workflows", "billing.invoice_adjustment")

    assert raw.startswith("tg_")
    assert "shown only this once" in notice
    token = ApiToken.objects.get()
    secret = raw.split("_", 2)[2]
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert raw not in {token.prefix, token.secret_hash}
    assert list(token.principal.workflows.values_list("name", flat=True)) == ["billing.invoice_adjustment"]


def test_the_printed_token_authenticates(billing_workflow):
    raw, _ = create_token("billing-bot", "--role", "agent", "--workflows", "billing.invoice_adjustment")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert client.get("/api/v1/exceptions/1").status_code == 404  # authenticated, no such item


def test_an_operator_gets_teams_and_a_supervisor_staff_rights(db):
    create_token("olga", "--role", "operator", "--teams", "billing,finance")
    create_token("sam", "--role", "supervisor")

    olga = Principal.objects.get(user__username="olga")
    assert set(olga.teams.values_list("name", flat=True)) == {"billing", "finance"}
    assert Principal.objects.get(user__username="sam").role == Role.SUPERVISOR
    assert Principal.objects.get(user__username="sam").user.is_staff


def test_an_agent_token_needs_workflows_that_exist(db):
    with pytest.raises(CommandError, match="needs --workflows"):
        create_token("bot", "--role", "agent")
    with pytest.raises(CommandError, match="unknown workflows: nope"):
        create_token("bot", "--role", "agent", "--workflows", "nope")
    assert not ApiToken.objects.exists()
