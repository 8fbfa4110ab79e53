"""Retry classification, backoff, callback URL safety and Standard Webhooks signatures."""

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from exceptions_app.delivery.retry import backoff, classify
from exceptions_app.delivery.signing import signature_headers, signature_verify
from exceptions_app.delivery.url_guard import callback_url_check
from exceptions_app.errors import InvalidInput
from exceptions_app.services.policies import webhook_secret_generate


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (400, "terminal"),
        (401, "terminal"),
        (404, "terminal"),
        (410, "terminal"),
        (301, "terminal"),
    ],
)
def test_status_codes_map_to_delivered_retry_or_terminal(status, outcome):
    assert classify(status).outcome == outcome


def test_retry_after_is_honoured_on_429():
    assert classify(429, "17").retry_after == 17.0
    assert classify(503, "soon").retry_after is None


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(7)
    delays = [backoff(attempt, base_seconds=2, max_seconds=60, rng=rng).total_seconds() for attempt in range(1, 9)]

    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(60, 2 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(delay, 6) for delay in delays}) == len(delays)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/",
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "ftp://example.com/x",
        "http:///nohost",
        "javascript:alert(1)",
    ],
)
def test_private_loopback_link_local_and_odd_urls_are_refused(url, settings):
    settings.TOLLGATE_CALLBACK_ALLOW = []

    with pytest.raises(InvalidInput) as refused:
        callback_url_check(url)

    assert refused.value.fields[0]["path"] == "callback_url"


def test_the_allowlist_admits_loopback_by_range_or_host_name(settings):
    settings.TOLLGATE_CALLBACK_ALLOW = ["127.0.0.0/8", "localhost"]

    callback_url_check("http://127.0.0.1:9/hook")
    callback_url_check("http://localhost:9/hook")
    with pytest.raises(InvalidInput):
        callback_url_check("http://10.1.2.3/hook")


def _signed(secret_list, body='{"a":1}', moment=None):
    return signature_headers(message_id="msg_1", body=body, secrets=secret_list, now=moment)


def test_a_standard_webhooks_receiver_accepts_our_signature():
    secret = webhook_secret_generate()
    body = json.dumps({"item_id": 1})

    assert signature_verify(secret=secret, body=body, headers=_signed([secret], body)) == {"item_id": 1}


def test_a_tampered_body_is_rejected():
    secret = webhook_secret_generate()
    headers = _signed([secret], '{"verdict":"reject"}')

    with pytest.raises(WebhookVerificationError):
        signature_verify(secret=secret, body='{"verdict":"approve"}', headers=headers)


def test_an_old_timestamp_is_rejected():
    secret = webhook_secret_generate()
    headers = _signed([secret], moment=datetime.now(UTC) - timedelta(minutes=10))

    with pytest.raises(WebhookVerificationError, match="too old"):
        signature_verify(secret=secret, body='{"a":1}', headers=headers)


def test_during_rotation_both_old_and_new_secrets_verify():
    old, new = webhook_secret_generate(), webhook_secret_generate()
    headers = _signed([new, old])

    assert len(headers["webhook-signature"].split(" ")) == 2
    assert signature_verify(secret=old, body='{"a":1}', headers=headers) == {"a": 1}
    assert signature_verify(secret=new, body='{"a":1}', headers=headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        signature_verify(secret=webhook_secret_generate(), body='{"a":1}', headers=headers)
