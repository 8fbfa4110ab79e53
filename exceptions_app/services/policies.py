import base64
import secrets

from django.db import transaction

from exceptions_app.models import PolicyVersion, Queue, Workflow
from exceptions_app.policy.document import policy_document_checksum, policy_document_validate
from exceptions_app.services.audit import audit_record


def webhook_secret_generate() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _queues_ensure(document: dict) -> None:
    names = {document["queue"]} | {rule["queue"] for rule in document.get("rules", []) if rule.get("queue")}
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
