"""The operators' API: queues, claims and the lifecycle of an item."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from exceptions_app.api import serializers
from exceptions_app.api.permissions import IsAgentOrPerson, IsPerson, IsSupervisor, principal_of
from exceptions_app.api.presenters import event_present, item_present, items_present_to, resolutions_hidden_from
from exceptions_app.errors import InvalidInput
from exceptions_app.models import AuditEvent, ItemStatus
from exceptions_app.selectors import (
    item_consensus,
    item_visible_check,
    item_visible_get,
    items_filtered,
    items_visible_to,
    queue_visible_get,
    queues_with_stats,
)
from exceptions_app.services import items as lifecycle
from exceptions_app.services.queues import queue_configure


def _detail(request, item_id: int) -> Response:
    return Response(_shown(item_visible_get(principal=principal_of(request), item_id=item_id)))


def _shown(item) -> dict:
    """The item for a person working it: captured state, and where its votes stand."""
    return {**item_present(item, captured=True), "consensus": item_consensus(item)}


class QueueListView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        operation_id="queue_list", responses={200: serializers.QueueOutput(many=True), **serializers.ERROR_RESPONSES}
    )
    def get(self, request):
        return Response(queues_with_stats(principal=principal_of(request)))


class QueueClaimNextView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        operation_id="queue_claim_next",
        request=None,
        responses={200: serializers.ExceptionItemOutput, 204: None, **serializers.ERROR_RESPONSES},
        summary="Lease the most urgent open item of the queue; 204 when the queue is empty",
    )
    def post(self, request, name: str):
        principal = principal_of(request)
        item = lifecycle.item_claim_next(queue=queue_visible_get(principal=principal, name=name), principal=principal)
        if item is None:
            return Response(status=204)
        return _detail(request, item.pk)


class ExceptionPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


FILTERS = ("status", "queue", "workflow", "correlation_id")


def _filtered(items: QuerySet, params) -> QuerySet:
    for name in FILTERS:
        # PostgreSQL cannot compare text holding NUL: refuse it here rather than fail in the query.
        if "\x00" in params.get(name, ""):
            raise InvalidInput(
                f"{name} contains a NUL character", fields=[{"path": name, "message": "contains a NUL character"}]
            )
    if params.get("status") and params["status"] not in ItemStatus.values:
        raise InvalidInput("unknown status", fields=[{"path": "status", "message": f"one of {ItemStatus.values}"}])
    return items_filtered(items, **{name: params.get(name, "") for name in FILTERS})


class ExceptionListView(APIView):
    """GET lists items (cursor-paged); POST (agents) reports an exception — see views_agents."""

    permission_classes = [IsAgentOrPerson]

    @extend_schema(
        operation_id="exception_list",
        parameters=[
            OpenApiParameter("queue", str),
            OpenApiParameter("status", str, enum=ItemStatus.values),
            OpenApiParameter("workflow", str),
            OpenApiParameter("correlation_id", str),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", int),
        ],
        responses={200: serializers.ExceptionPageOutput, **serializers.ERROR_RESPONSES},
    )
    def get(self, request):
        items = _filtered(items_visible_to(principal_of(request)), request.query_params)
        paginator = ExceptionPagination()
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response(items_present_to(principal_of(request), page))


class _ItemAction(APIView):
    permission_classes = [IsPerson]
    input_serializer = serializers.NoteInput
    answers_with_result = False  # True where act() returns the whole item, its relations loaded

    def post(self, request, item_id: int):
        principal = principal_of(request)
        item_visible_check(principal=principal, item_id=item_id)
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = self.act(principal, item_id, data.validated_data)
        if self.answers_with_result:  # the item as the action left it: no second read of it
            return Response(_shown(result))
        return _detail(request, item_id)


def _action(name: str, summary: str):
    """An item action's schema: ``exception_<name>``, its summary, its view's input serializer."""

    def describe(view: type[_ItemAction]) -> type[_ItemAction]:
        return extend_schema_view(
            post=extend_schema(
                operation_id=f"exception_{name}",
                request=view.input_serializer,
                responses={200: serializers.ExceptionItemOutput, **serializers.ERROR_RESPONSES},
                summary=summary,
            )
        )(view)

    return describe


@_action("claim", "Lease this item (renews your own lease)")
class ExceptionClaimView(_ItemAction):
    def act(self, principal, item_id, data):
        lifecycle.item_claim(item_id=item_id, principal=principal)


@_action("renew", "Extend your lease while you keep working")
class ExceptionRenewView(_ItemAction):
    def act(self, principal, item_id, data):
        lifecycle.item_renew_lease(item_id=item_id, principal=principal)


@_action("release", "Give the item back to its queue")
class ExceptionReleaseView(_ItemAction):
    def act(self, principal, item_id, data):
        lifecycle.item_release(item_id=item_id, principal=principal, note=data["note"])


@_action("resolve", "Approve, modify, reject or escalate a claimed item")
class ExceptionResolveView(_ItemAction):
    input_serializer = serializers.ResolveInput
    answers_with_result = True

    def act(self, principal, item_id, data):
        return lifecycle.item_resolve(item_id=item_id, principal=principal, **data)


@_action("snooze", "Put a claimed item aside until a time")
class ExceptionSnoozeView(_ItemAction):
    input_serializer = serializers.SnoozeInput

    def act(self, principal, item_id, data):
        lifecycle.item_snooze(item_id=item_id, principal=principal, until=data["until"], note=data["note"])


class ExceptionCommentsView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        operation_id="exception_comment_add",
        request=serializers.CommentInput,
        responses={201: serializers.EventOutput, **serializers.ERROR_RESPONSES},
    )
    def post(self, request, item_id: int):
        principal = principal_of(request)
        item_visible_check(principal=principal, item_id=item_id)
        data = serializers.CommentInput(data=request.data)
        data.is_valid(raise_exception=True)
        event = lifecycle.item_comment_add(item_id=item_id, principal=principal, text=data.validated_data["text"])
        return Response(event_present(event), status=201)


class ExceptionTimelineView(APIView):
    permission_classes = [IsAgentOrPerson]

    @extend_schema(
        operation_id="exception_timeline",
        responses={200: serializers.EventOutput(many=True), **serializers.ERROR_RESPONSES},
    )
    def get(self, request, item_id: int):
        principal = principal_of(request)
        item = item_visible_get(principal=principal, item_id=item_id)
        events = AuditEvent.objects.filter(item=item).order_by("created_at", "id")
        if resolutions_hidden_from(principal, [item]):  # the decision may still be undone: not told yet
            events = events.filter(created_at__lt=item.resolved_at)
        return Response([event_present(event) for event in events])


class QueueDetailView(APIView):
    permission_classes = [IsPerson]

    def get_permissions(self):
        return [IsSupervisor()] if self.request.method == "PUT" else super().get_permissions()

    def _shown(self, request, name: str) -> dict:
        return next(queue for queue in queues_with_stats(principal=principal_of(request)) if queue["name"] == name)

    @extend_schema(operation_id="queue_get", responses={200: serializers.QueueOutput, **serializers.ERROR_RESPONSES})
    def get(self, request, name: str):
        queue_visible_get(principal=principal_of(request), name=name)
        return Response(self._shown(request, name))

    @extend_schema(
        operation_id="queue_put",
        request=serializers.QueueInput,
        responses={200: serializers.QueueOutput, 201: serializers.QueueOutput, **serializers.ERROR_RESPONSES},
        summary="Create or configure a queue (supervisors)",
    )
    def put(self, request, name: str):
        data = serializers.QueueInput(data=request.data)
        data.is_valid(raise_exception=True)
        _, created = queue_configure(name=name, actor=request.user, **data.validated_data)
        return Response(self._shown(request, name), status=201 if created else 200)
