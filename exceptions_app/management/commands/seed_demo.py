from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

DEMO_USERS = [
    # (username, password, is_staff, description)
    ("supervisor", "tollgate-supervisor", True, "supervisor: dashboards, policies, admin"),
    ("alice", "tollgate-operator", False, "operator"),
    ("bob", "tollgate-operator", False, "operator"),
]


class Command(BaseCommand):
    help = "Create the demo users (idempotent) and print the URL and logins."

    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            for username, password, is_staff, _ in DEMO_USERS:
                user, created = user_model.objects.get_or_create(username=username)
                if created:
                    user.set_password(password)
                    user.is_staff = is_staff
                    user.is_superuser = is_staff
                    user.save()
        lines = ["", f"Tollgate is starting: http://{settings.TOLLGATE_BIND}/", "Demo logins (username / password):"]
        lines += [
            f"  {username:<11} / {password:<20} {description}" for username, password, _, description in DEMO_USERS
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)) + "\n")
