import base64
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from exceptions_app.errors import InvalidInput
from exceptions_app.models import PolicyVersion, Queue, Workflow
from exceptions_app.policy.document import policy_document_checksum, policy_document_validate
from exceptions_app.services.audit import audit_record


def webhook_secret_generate() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _queues_ensure(document: dict) -> None:
    names = {document["queue"]} | {rule["queue"] for rule in document.get("rules", []) if rule.get("queue")}
    names |= {document["sampling"]["queue"]} if document.get("sampling", {}).get("queue") else set()
    names |= {document["blind_review"]["adjudication_queue"]} if "blind_review" in document else set()
    existing = set(Queue.objects.filter(name__in=names).values_list("name", flat=True))
    Queue.objects.bulk_create(
        [Queue(name=name, sla_seconds=document["sla_seconds"]) for name in sorted(names - existing)],
        ignore_conflicts=True,
    )


def policy_publish(*, document: dict, source: str, actor=None) -> tuple[PolicyVersion, bool]:
    """Validate ``document`` and publish it as the workflow's next version, creating the workflow
    (with a fresh webhook secret) and any queue it names. Publishes nothing when the document is
    unchanged; returns the current version and whether a new one was written."""
    policy_document_validate(document)
    checksum = policy_document_checksum(document)
    with transaction.atomic():
        workflow, created = Workflow.objects.select_for_update().get_or_create(
            name=document["workflow"], defaults={"webhook_secret": webhook_secret_generate()}
        )
        current = workflow.current_policy
        if current is not None and current.checksum == checksum:
            return current, False
        version = PolicyVersion.objects.create(
            workflow=workflow,
            version=(current.version + 1) if current else 1,
            document=document,
            checksum=checksum,
            source=source,
            published_by=actor,
        )
        workflow.current_policy = version
        workflow.save(update_fields=["current_policy"])
        _queues_ensure(document)
        audit_record(
            action="policy_published",
            actor=actor,
            actor_label=None if actor else source,
            workflow=workflow,
            payload={"version": version.version, "checksum": checksum, "created_workflow": created},
        )
    return version, True


def webhook_secret_rotate(*, workflow: Workflow, actor, new_secret: str | None = None) -> str:
    """Make ``new_secret`` (or a generated one) the signing secret; the old one keeps signing
    beside it for TOLLGATE_WEBHOOK_ROTATION_HOURS so receivers can switch without a gap."""
    secret = new_secret or webhook_secret_generate()
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        key = b""
    if not secret.startswith("whsec_") or len(key) < 24:
        raise InvalidInput(
            "webhook_secret must be whsec_ followed by base64 of at least 24 bytes",
            fields=[{"path": "webhook_secret", "message": "whsec_ + base64 of 24 to 64 random bytes"}],
        )
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        workflow.previous_webhook_secret = workflow.webhook_secret
        workflow.previous_secret_retires_at = timezone.now() + timedelta(hours=settings.TOLLGATE_WEBHOOK_ROTATION_HOURS)
        workflow.webhook_secret = secret
        workflow.save(update_fields=["webhook_secret", "previous_webhook_secret", "previous_secret_retires_at"])
        audit_record(
            action="webhook_secret_rotated",
            actor=actor,
            workflow=workflow,
            payload={"previous_retires_at": workflow.previous_secret_retires_at.isoformat()},
        )
    return secret
