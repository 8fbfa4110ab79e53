"""Secrets never reach the logs: with every logger at DEBUG, creating and using a token, rotating a
webhook secret and signing in (right and wrong) leave no token, secret or password in any log
record, nor in the record of a failed sign-in that django-axes keeps."""

import logging
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from exceptions_app.models import Workflow
from exceptions_app.services.policies import webhook_secret_generate, webhook_secret_rotate
from tests.fixtures.gate import BILLING, billing_document

pytestmark = pytest.mark.django_db

PASSWORD = "Alice-real-passphrase-42"
WRONG_PASSWORD = "Wr0ng-but-secret-guess"  # a failed attempt's password is a secret too (often a typo of the real one)


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)  # the root logger, so every library's records reach caplog
    return caplog


def logged_text(caplog) -> str:
    return "\n".join(
        f"{record.name} {record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records
    )


def test_tokens_webhook_secrets_and_passwords_never_appear_in_logs(everything_logged, billing_workflow):
    secrets: list[str] = []

    printed = StringIO()
    call_command("create_token", "logbot", "--role", "agent", "--workflows", BILLING, stdout=printed, stderr=StringIO())
    token = printed.getvalue().strip()
    secrets.append(token)
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert agent.get("/api/v1/exceptions").status_code == 200
    forged = token[:-4] + "AAAA"
    secrets.append(forged)
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert agent.get("/api/v1/exceptions").status_code == 401

    call_command("create_token", "sam", "--role", "supervisor", stdout=printed, stderr=StringIO())
    supervisor_token = printed.getvalue().split()[-1]
    secrets.append(supervisor_token)
    supervisor = APIClient()
    supervisor.credentials(HTTP_AUTHORIZATION=f"Bearer {supervisor_token}")
    chosen = webhook_secret_generate()
    secrets.append(chosen)
    rotated = supervisor.put(
        f"/api/v1/workflows/{BILLING}", {**billing_document(), "webhook_secret": chosen}, format="json"
    )
    assert rotated.status_code == 200
    too_short = "whsec_c2hvcnQ="
    secrets.append(too_short)
    refused = supervisor.put(
        f"/api/v1/workflows/{BILLING}", {**billing_document(), "webhook_secret": too_short}, format="json"
    )
    assert refused.status_code == 400
    assert too_short not in refused.content.decode()
    generated = webhook_secret_rotate(workflow=Workflow.objects.get(name=BILLING), actor=None)
    secrets.append(generated)
    assert Workflow.objects.get(name=BILLING).webhook_secret == generated

    # Not through factory_boy, which logs the arguments of set_password at DEBUG itself.
    get_user_model().objects.create_user("alice", password=PASSWORD)
    browser = Client()
    csrf_token = "csrf-token-value-from-the-form"
    failed = {"username": "alice", "password": WRONG_PASSWORD, "csrfmiddlewaretoken": csrf_token}
    assert browser.post("/accounts/login/", failed).status_code == 200
    (attempt,) = AccessAttempt.objects.all()
    assert "password=********************" in attempt.post_data
    assert WRONG_PASSWORD not in str(attempt.__dict__)
    assert csrf_token not in str(attempt.__dict__)
    secrets.append(csrf_token)
    assert browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    secrets += [WRONG_PASSWORD, PASSWORD]

    text = logged_text(everything_logged)
    assert any(record.name.startswith("axes") for record in everything_logged.records), "the login was logged"
    for secret in secrets:
        assert secret not in text
        # The part after the public prefix is what matters for tokens (tg_<prefix>_<secret>).
        assert secret.rsplit("_", 1)[-1] not in text
