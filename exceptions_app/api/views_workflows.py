"""Supervisors manage workflow policies (the same document as the YAML files)."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.api import serializers
from exceptions_app.api.permissions import IsSupervisor
from exceptions_app.errors import InvalidInput
from exceptions_app.models import PolicySource, Workflow
from exceptions_app.policy.document import POLICY_DOCUMENT_SCHEMA, PolicyInvalid
from exceptions_app.rules import iso_timestamp
from exceptions_app.selectors import workflow_published_or_not_found
from exceptions_app.services.policies import policy_publish, webhook_secret_rotate


def _present(version) -> dict:
    return {
        "name": version.workflow.name,
        "version": version.version,
        "published_at": iso_timestamp(version.published_at),
        "policy": version.document,
    }


def _policy_request_schema() -> dict:
    """The policy document's own JSON Schema as PUT's body: ``workflow`` may be left out (the URL names
    it), and ``webhook_secret`` may come alongside to replace the signing secret."""
    document = {key: value for key, value in POLICY_DOCUMENT_SCHEMA.items() if key != "$schema"}
    return {
        **document,
        "description": "A policy document, as in policies/*.yaml",
        "required": [name for name in document["required"] if name != "workflow"],
        "properties": {
            **document["properties"],
            "webhook_secret": {"type": "string", "description": "whsec_ followed by base64 of 24 to 64 bytes"},
        },
    }


POLICY_REQUEST_SCHEMA = _policy_request_schema()


class WorkflowDetailView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="workflow_get",
        responses={200: serializers.WorkflowOutput, **serializers.ERROR_RESPONSES},
    )
    def get(self, request, name: str):
        return Response(_present(workflow_published_or_not_found(name).current_policy))

    @extend_schema(
        operation_id="workflow_put",
        request={"application/json": POLICY_REQUEST_SCHEMA},
        responses={
            200: serializers.WorkflowOutput,
            201: serializers.WorkflowCreatedOutput,
            **serializers.ERROR_RESPONSES,
        },
        summary="Create or update a workflow's policy; publishes a new version only when it changed",
    )
    def put(self, request, name: str):
        document = request.data
        if not isinstance(document, dict):
            raise InvalidInput("the body must be a policy document (a JSON object)")
        document = {"workflow": name, **document}
        new_secret = document.pop("webhook_secret", None)
        if new_secret is not None and not isinstance(new_secret, str):
            raise InvalidInput(
                "webhook_secret must be a string", fields=[{"path": "webhook_secret", "message": "string"}]
            )
        if document["workflow"] != name:
            raise InvalidInput(
                "workflow in the body differs from the URL",
                fields=[{"path": "workflow", "message": f"must be {name!r} or absent"}],
            )
        try:
            with transaction.atomic():
                version, created = policy_publish(document=document, source=PolicySource.API, actor=request.user)
                if new_secret is not None:
                    webhook_secret_rotate(workflow=version.workflow, actor=request.user, new_secret=new_secret)
        except PolicyInvalid as error:
            raise InvalidInput(str(error), fields=[policy_error.as_dict() for policy_error in error.errors]) from None
        shown = _present(version)
        if version.version == 1 and created and new_secret is None:
            # Shown once, when the workflow is created; afterwards it can only be replaced.
            shown["webhook_secret"] = Workflow.objects.get(pk=version.workflow_id).webhook_secret
        return Response(shown, status=201 if created else 200)
