"""CSRF, enforced as a browser meets it: a signed-in console form, an htmx request and a
session-authenticated API call each get 403 without the token and write nothing; the same
request with the token goes through. The default test client skips CSRF checks, so these use
``Client(enforce_csrf_checks=True)``."""

import re

import pytest
from django.test import Client

from exceptions_app.models import AuditEvent, ExceptionItem, ItemStatus
from tests.fixtures.gate import hold

pytestmark = pytest.mark.django_db

FORM_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
HTMX_HEADER_TOKEN = re.compile(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'")


@pytest.fixture
def claimed(agent_client, operator_client) -> int:
    item_id = hold(agent_client)
    assert operator_client.post(f"/api/v1/exceptions/{item_id}/claim").status_code == 200
    return item_id


@pytest.fixture
def olga(operator_client) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_client.principal.user)
    return client


def _page_tokens(client: Client, item_id: int) -> tuple[str, str]:
    """The form field token and the hx-headers token of the item page, as a browser reads them."""
    page = client.get(f"/items/{item_id}").content.decode()
    return FORM_TOKEN.search(page).group(1), HTMX_HEADER_TOKEN.search(page).group(1)


def _written(item_id: int) -> tuple:
    item = ExceptionItem.objects.get(pk=item_id)
    return item.status, item.resolution, AuditEvent.objects.filter(item_id=item_id).count()


def test_a_console_form_without_the_token_is_403_and_with_it_goes_through(olga, claimed):
    form_token, _ = _page_tokens(olga, claimed)
    before = _written(claimed)

    refused = olga.post(f"/items/{claimed}/approve", {"then": "stay"})
    forged = olga.post(f"/items/{claimed}/approve", {"then": "stay", "csrfmiddlewaretoken": "x" * 64})

    assert (refused.status_code, forged.status_code) == (403, 403)
    assert _written(claimed) == before
    accepted = olga.post(f"/items/{claimed}/approve", {"then": "stay", "csrfmiddlewaretoken": form_token})
    assert accepted.status_code == 302
    assert ExceptionItem.objects.get(pk=claimed).status == ItemStatus.RESOLVED


def test_an_htmx_post_without_the_header_token_is_403_and_with_it_goes_through(olga, claimed):
    _, header_token = _page_tokens(olga, claimed)
    before = _written(claimed)

    refused = olga.post(f"/items/{claimed}/comment", {"text": "seen"}, HTTP_HX_REQUEST="true")

    assert refused.status_code == 403
    assert _written(claimed) == before
    accepted = olga.post(
        f"/items/{claimed}/comment", {"text": "seen"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=header_token
    )
    assert accepted.status_code in (200, 302)
    assert AuditEvent.objects.filter(item_id=claimed, action="commented").count() == 1


def test_a_session_api_post_without_the_token_is_403_and_with_it_goes_through(olga, claimed):
    _, header_token = _page_tokens(olga, claimed)
    url = f"/api/v1/exceptions/{claimed}/comments"
    before = _written(claimed)

    refused = olga.post(url, {"text": "seen"}, content_type="application/json")

    assert refused.status_code == 403
    assert "CSRF" in refused.content.decode()
    assert _written(claimed) == before
    accepted = olga.post(url, {"text": "seen"}, content_type="application/json", HTTP_X_CSRFTOKEN=header_token)
    assert accepted.status_code == 201, accepted.content[:300]
    assert AuditEvent.objects.filter(item_id=claimed, action="commented").count() == 1
