from django.core.management.base import BaseCommand, CommandError

from exceptions_app.errors import DomainError
from exceptions_app.models import Role
from exceptions_app.services.tokens import principal_ensure, token_create


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


class Command(BaseCommand):
    help = "Create an API token for NAME (creating the principal if needed); prints it once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--workflows", default="", help="comma-separated workflows an agent may submit to")
        parser.add_argument("--teams", default="", help="comma-separated teams of an operator")

    def handle(self, *args, name: str, role: str, workflows: str, teams: str, **options) -> None:
        if role == Role.AGENT and not _names(workflows):
            raise CommandError("an agent token needs --workflows")
        try:
            principal = principal_ensure(name=name, role=role, workflows=_names(workflows), teams=_names(teams))
        except DomainError as error:
            raise CommandError(error.message) from None
        _, raw = token_create(principal=principal)
        self.stderr.write(f"Token for {name} ({role}); it is shown only this once:")
        self.stdout.write(raw)
