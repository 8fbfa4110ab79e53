"""Add an operator or supervisor who signs in to the console with a password.

    python manage.py create_person NAME --role operator|supervisor [--teams a,b] [--password-env VARIABLE]

The password comes from the environment variable named by ``--password-env`` (never from the
command line, where the process list would show it), or else from a prompt. Missing teams are
created (give them queues on the People page or in the policy files). The change is audited.
"""

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from exceptions_app.errors import DomainError
from exceptions_app.management.passwords import password_from_environment
from exceptions_app.services.people import PERSON_ROLES, person_create

ACTOR_LABEL = "manage.py create_person"


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=[role.value for role in PERSON_ROLES])
        parser.add_argument("--teams", default="", help="comma-separated teams (created if missing)")
        parser.add_argument("--password-env", metavar="VARIABLE", help="read the password from this variable")

    def handle(self, *args, name: str, role: str, teams: str, password_env: str | None, **options) -> None:
        password = self._password(password_env)
        try:
            principal = person_create(
                actor=None,
                actor_label=ACTOR_LABEL,
                username=name,
                role=role,
                teams=[team.strip() for team in teams.split(",") if team.strip()],
                password=password,
                create_teams=True,
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        team_names = ", ".join(team.name for team in principal.teams.order_by("name")) or "no team"
        self.stdout.write(f"Created {name}: {role}, {team_names}. They can sign in now.")

    @staticmethod
    def _password(variable: str | None) -> str:
        if variable is not None:
            return password_from_environment(variable)
        if not sys.stdin.isatty():
            raise CommandError("no terminal to ask for a password: pass --password-env VARIABLE")
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("the two passwords differ")
        return password
