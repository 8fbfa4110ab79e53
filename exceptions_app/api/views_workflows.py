"""Supervisors manage workflow policies (the same document as the YAML files)."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.api import serializers
from exceptions_app.api.permissions import IsSupervisor
from exceptions_app.errors import InvalidInput, NotFound
from exceptions_app.models import PolicySource, Workflow
from exceptions_app.policy.document import PolicyInvalid
from exceptions_app.services.policies import policy_publish, webhook_secret_rotate


def _present(version) -> dict:
    return {
        "name": version.workflow.name,
        "version": version.version,
        "published_at": version.published_at.isoformat().replace("+00:00", "Z"),
        "policy": version.document,
    }


class WorkflowDetailView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        operation_id="workflow_get",
        responses={
            200: serializers.WorkflowOutput,
            401: serializers.ErrorOutput,
            403: serializers.ErrorOutput,
            404: serializers.ErrorOutput,
        },
    )
    def get(self, request, name: str):
        workflow = Workflow.objects.select_related("current_policy").filter(name=name).first()
        if workflow is None or workflow.current_policy is None:
            raise NotFound(f"unknown workflow {name!r}")
        return Response(_present(workflow.current_policy))

    @extend_schema(
        operation_id="workflow_put",
        request={"application/json": {"type": "object", "description": "A policy document, as in policies/*.yaml"}},
        responses={
            200: serializers.WorkflowOutput,
            201: serializers.WorkflowOutput,
            400: serializers.ErrorOutput,
            401: serializers.ErrorOutput,
            403: serializers.ErrorOutput,
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
