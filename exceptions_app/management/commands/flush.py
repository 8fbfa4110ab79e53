"""`flush`, able to empty the audit log too: the one sanctioned way to wipe the whole database."""

from django.core.management.commands import flush
from django.db import connections

# The audit table's guard triggers (migrations 0003, 0010) refuse DELETE and TRUNCATE. Ordinary
# triggers do not fire under session_replication_role = replica, which only a superuser may set,
# so flush works for the database's owner-superuser (a developer, the test suite) and fails for
# a plain application role, as it should. SET LOCAL ends with flush's own transaction.
LIFT_GUARDS = "SET LOCAL session_replication_role = replica"
RESTORE_GUARDS = "SET LOCAL session_replication_role TO DEFAULT"


class Command(flush.Command):
    help = flush.Command.help + " On PostgreSQL it needs a superuser, since it also empties the audit log."

    def handle(self, **options):
        operations = connections[options["database"]].ops
        if operations.connection.vendor != "postgresql":
            return super().handle(**options)
        execute = operations.execute_sql_flush

        def execute_with_guards_lifted(sql_list: list[str]) -> None:
            execute([LIFT_GUARDS, *sql_list, RESTORE_GUARDS] if sql_list else sql_list)

        operations.execute_sql_flush = execute_with_guards_lifted
        try:
            return super().handle(**options)
        finally:
            del operations.execute_sql_flush
