"""Standard Webhooks signatures (https://www.standardwebhooks.com/), with key rotation."""

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def signature_headers(*, message_id: str, body: str, secrets: list[str], now: datetime | None = None) -> dict:
    """``webhook-id``, ``webhook-timestamp`` and one ``v1,`` signature per secret (space-separated),
    so a receiver that knows either the old or the new secret accepts the message."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    signatures = " ".join(Webhook(secret).sign(msg_id=message_id, timestamp=moment, data=body) for secret in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signatures,
    }


def signature_verify(*, secret: str, body: bytes | str, headers: dict) -> object:
    """Verify a delivery as a receiver would; returns the parsed JSON or raises WebhookVerificationError."""
    return Webhook(secret).verify(body, headers)
