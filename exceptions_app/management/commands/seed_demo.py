from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from exceptions_app.models import Queue
from exceptions_app.services.queues import queue_configure
from exceptions_app.services.tokens import principal_ensure

# username, password, role, teams, description
DEMO_USERS = [
    ("supervisor", "tollgate-supervisor", "supervisor", [], "supervisor: every queue, dashboards, policies, admin"),
    ("alice", "tollgate-operator", "operator", ["finance"], "operator, team finance"),
    ("bob", "tollgate-operator", "operator", ["operations"], "operator, team operations"),
    # A second pair of eyes in finance: billing adjustments above 10,000 need two approvers.
    ("erin", "tollgate-operator", "operator", ["finance"], "operator, team finance (second approver)"),
]
# Which team works which queue, and where each queue escalates.
DEMO_QUEUES = {
    "billing": ("finance", "billing-senior"),
    "billing-senior": ("finance", None),
    "reconciliation": ("finance", "reconciliation-senior"),
    "reconciliation-senior": ("finance", None),
    "payments-security": ("finance", None),
    "documents": ("operations", "payments-security"),
    "routing": ("operations", "routing-senior"),
    "routing-senior": ("operations", None),
    "routing-compliance": ("operations", None),
    "operations": ("operations", "operations-oncall"),
    "operations-oncall": ("operations", None),
}


class Command(BaseCommand):
    help = "Load the example policies, queues, teams and demo users (idempotent); print the URL and logins."

    def handle(self, *args, **options) -> None:
        call_command("apply_policies", str(Path(settings.BASE_DIR) / "policies"), stdout=self.stdout)
        with transaction.atomic():
            for username, password, role, teams, _ in DEMO_USERS:
                principal = principal_ensure(name=username, role=role, teams=teams)
                user = principal.user
                if not user.has_usable_password():
                    user.set_password(password)
                    user.is_superuser = role == "supervisor"
                    user.save()
            for name, (team, escalation) in DEMO_QUEUES.items():
                if Queue.objects.filter(name=name, teams__isnull=True).exists():
                    queue_configure(name=name, actor=None, teams=[team], escalation_queue=escalation or "")
        lines = ["", f"Tollgate is starting: http://{settings.TOLLGATE_BIND}/", "Demo logins (username / password):"]
        lines += [f"  {name:<11} / {password:<20} {about}" for name, password, _, _, about in DEMO_USERS]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)) + "\n")
