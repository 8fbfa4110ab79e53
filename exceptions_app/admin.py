"""Admin for configuration (queues, teams, principals). Captured state, policy versions and the
audit log are read-only here: they change only through services."""

from django.contrib import admin
from django.db import models

from exceptions_app.models import ApiToken, AuditEvent, ExceptionItem, PolicyVersion, Principal, Queue, Team, Workflow


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["name", "sla_seconds", "escalation_queue"]
    filter_horizontal = ["teams"]
    search_fields = ["name"]


@admin.register(Principal)
class PrincipalAdmin(admin.ModelAdmin):
    list_display = ["user", "role"]
    list_filter = ["role"]
    filter_horizontal = ["teams", "workflows"]


class ReadOnlyAdmin(admin.ModelAdmin):
    # The read-only pages still build a form. Callback URLs are stored whole, so the scheme a bare host
    # would get never applies; naming it keeps Django 5.2 from warning that its default changes in 6.0.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "principal", "created_at", "last_used_at", "revoked_at"]
    exclude = ["secret_hash"]


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ["name", "current_policy", "created_at"]
    exclude = ["webhook_secret"]


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["workflow", "version", "source", "published_by", "published_at"]
    list_filter = ["workflow"]


@admin.register(ExceptionItem)
class ExceptionItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "workflow", "queue", "status", "priority", "due_at", "claimed_by"]
    list_filter = ["status", "queue", "workflow"]
    search_fields = ["correlation_id"]
    show_full_result_count = False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "item", "action", "from_status", "to_status", "actor_label"]
    list_filter = ["action"]
    show_full_result_count = False
