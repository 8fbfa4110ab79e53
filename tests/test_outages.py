"""Outages and unexpected errors answer in the API's shape (a plain page in the console), never
Django's HTML 500. The failure is injected where it would really surface; tests/test_outages_real.py
stops PostgreSQL and Redis for real."""

import logging

import pytest
import redis
from django import db
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import Client

from exceptions_app.api.authentication import BearerTokenAuthentication
from exceptions_app.services.tokens import principal_ensure

pytestmark = pytest.mark.django_db


def fail_with(error: BaseException):
    def failing(*args, **kwargs):
        raise error

    return failing


def assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()["error"]
    assert (body["status"], body["code"]) == (status, code)
    return body


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (db.OperationalError("connection refused"), "database_unavailable"),
        (db.InterfaceError("connection already closed"), "database_unavailable"),
        (redis.exceptions.ConnectionError("Connection refused"), "broker_unavailable"),
    ],
)
def test_an_outage_under_an_api_view_is_a_json_503_with_retry_after(agent_client, monkeypatch, error, code):
    monkeypatch.setattr(BearerTokenAuthentication, "authenticate", fail_with(error))
    for response in (
        agent_client.get("/api/v1/exceptions/1"),
        agent_client.post("/api/v1/decisions", {}, format="json"),
    ):
        body = assert_error_shape(response, 503, code)
        assert "cannot be reached" in body["message"]
        assert response["Retry-After"] == "5"


def test_an_outage_in_a_middleware_after_the_view_is_still_a_json_503(agent_client, monkeypatch):
    monkeypatch.setattr(SessionMiddleware, "process_response", fail_with(db.OperationalError("server closed")))
    agent_client.raise_request_exception = False
    response = agent_client.get("/api/v1/stats/queues")
    assert_error_shape(response, 503, "database_unavailable")
    assert response["Retry-After"] == "5"


def test_any_other_exception_on_an_api_path_is_a_json_500_with_a_logged_correlation_id(
    agent_client, monkeypatch, caplog
):
    monkeypatch.setattr(BearerTokenAuthentication, "authenticate", fail_with(ZeroDivisionError("boom")))
    with caplog.at_level(logging.ERROR, logger="exceptions_app.outages"):
        response = agent_client.get("/api/v1/exceptions/1")
    body = assert_error_shape(response, 500, "internal_error")
    correlation_id = body["correlation_id"]
    assert correlation_id in body["message"]
    assert response["X-Correlation-Id"] == correlation_id
    [record] = [record for record in caplog.records if correlation_id in record.getMessage()]
    assert record.exc_info[0] is ZeroDivisionError  # the traceback is in the log, under the same id


def test_an_exception_in_a_middleware_on_an_api_path_is_json_too(agent_client, monkeypatch):
    monkeypatch.setattr(SessionMiddleware, "process_response", fail_with(KeyError("session")))
    agent_client.raise_request_exception = False
    assert_error_shape(agent_client.get("/api/v1/stats/queues"), 500, "internal_error")


def test_the_console_shows_a_plain_page_naming_what_is_unreachable(billing_queues, monkeypatch):
    client = Client()
    client.force_login(principal_ensure(name="olga", role="operator", teams=["billing-team"]).user)
    monkeypatch.setattr("review.views.queues_with_stats", fail_with(db.OperationalError("connection refused")))
    response = client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "The database cannot be reached" in response.content.decode()


def test_the_readiness_probe_keeps_its_own_503(monkeypatch, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT = None
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["broker"] != "ok"
