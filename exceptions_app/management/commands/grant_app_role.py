"""Give a PostgreSQL role exactly what the running app needs, and no way to change the audit log.

    python manage.py grant_app_role tollgate_app [--create] [--password-env VARIABLE] [--print]

Run it as the role that owns the tables (the one that runs migrations), after every ``migrate``;
then run web, workers and beat with ``DATABASE_URL`` naming the app role. ``--password-env``
sets the role's password from that environment variable (never from the command line, where
the process list would show it), so docker-compose can create a role that signs in over TCP. That role can read and
write every table except the audit log, where it may only SELECT and INSERT: UPDATE, DELETE and
TRUNCATE are refused by privilege, and since it does not own the table it cannot drop or disable
the guard triggers either. Migrations keep running as the owner.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from psycopg import sql

from exceptions_app.management.passwords import password_from_environment
from exceptions_app.models import AuditEvent

IDENTIFIER_HELP = "a PostgreSQL role name (letters, digits and underscores)"


def grant_statements(role: str, *, tables: list[str], sequences: list[str], audit_table: str) -> list[sql.Composed]:
    """The GRANTs and REVOKEs, in order; every table of the schema is covered, new ones included."""
    name = sql.Identifier(role)
    statements = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(connection.settings_dict["NAME"]), name),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
    ]
    for table in tables:
        if table == audit_table:
            statements.append(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.Identifier(table), name))
            statements.append(sql.SQL("GRANT SELECT, INSERT ON TABLE {} TO {}").format(sql.Identifier(table), name))
        else:
            statements.append(
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {} TO {}").format(sql.Identifier(table), name)
            )
    statements += [
        sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(sql.Identifier(sequence), name)
        for sequence in sequences
    ]
    return statements


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("role", help=IDENTIFIER_HELP)
        parser.add_argument("--create", action="store_true", help="create the role (LOGIN, no password) if missing")
        parser.add_argument("--print", action="store_true", dest="only_print", help="print the SQL, change nothing")
        parser.add_argument(
            "--password-env", metavar="VARIABLE", help="set the role's password from this environment variable"
        )

    def handle(self, *args, role: str, create: bool, only_print: bool, password_env: str | None, **options):
        password = None if password_env is None else password_from_environment(password_env)
        if connection.vendor != "postgresql":
            raise CommandError("grant_app_role is for PostgreSQL; SQLite has no roles")
        if not role.replace("_", "").isalnum() or not role[0].isalpha() or len(role) > 63:
            raise CommandError(f"role must be {IDENTIFIER_HELP}, at most 63 characters")
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
            found = cursor.fetchone()
            if found and found[0]:
                raise CommandError(f"{role} is a superuser: superusers ignore privileges and may disable triggers")
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            tables = [row[0] for row in cursor.fetchall()]
            cursor.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")
            sequences = [row[0] for row in cursor.fetchall()]
            statements = grant_statements(
                role, tables=tables, sequences=sequences, audit_table=AuditEvent._meta.db_table
            )
            creating = create and not found
            if creating:
                statements.insert(0, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            elif not found and not only_print:
                raise CommandError(f"role {role} does not exist: add --create, or create it with a password first")
            raw = cursor.cursor.connection
            rendered = [statement.as_string(raw) for statement in statements]
            if password is not None:
                # Set on every run, so a changed variable takes effect; shown only as where it comes from.
                after_create = 1 if creating else 0
                statements.insert(
                    after_create,
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)),
                )
                rendered.insert(after_create, f'ALTER ROLE "{role}" PASSWORD <from ${password_env}>')
            if only_print:
                self.stdout.write(";\n".join(rendered) + ";")
                return
            for statement in statements:
                cursor.cursor.execute(statement)
        self.stdout.write(
            f"{role}: read/write on {len(tables) - 1} tables, SELECT and INSERT only on {AuditEvent._meta.db_table}"
        )
