"""Every migration can be reversed: the app's schema goes down to zero and back up on PostgreSQL and
comes back identical, triggers included. A migration that cannot be reversed must say why in its
docstring and be listed in IRREVERSIBLE below."""

import importlib

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

pytestmark = pytest.mark.django_db(transaction=True)

APPS_WITH_MIGRATIONS = ["exceptions_app"]  # review keeps no models
# migration name -> why it cannot be reversed (also said in its docstring). None today.
IRREVERSIBLE: dict[str, str] = {}

SCHEMA = """
SELECT 'column', table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
  FROM information_schema.columns WHERE table_schema = 'public' AND table_name LIKE 'exceptions\\_app\\_%%'
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename LIKE 'exceptions\\_app\\_%%'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE conrelid::regclass::text LIKE 'exceptions\\_app\\_%%'
UNION ALL
SELECT 'trigger', tgrelid::regclass || ' ' || pg_get_triggerdef(oid)
  FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE 'exceptions\\_app\\_%%'
UNION ALL
SELECT 'storage', relname || ' ' || array_to_string(reloptions, ',')
  FROM pg_class WHERE reloptions IS NOT NULL AND relname LIKE 'exceptions\\_app\\_%%'
"""


def schema() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(SCHEMA)
        return sorted(cursor.fetchall())


def migrations_of(app: str) -> dict[str, object]:
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return {name: migration for (label, name), migration in loader.disk_migrations.items() if label == app}


def test_irreversible_migrations_are_exactly_the_listed_ones_and_say_why():
    irreversible = {}
    for app in APPS_WITH_MIGRATIONS:
        for name, migration in migrations_of(app).items():
            if not all(operation.reversible for operation in migration.operations):
                irreversible[name] = importlib.import_module(migration.__module__).__doc__ or ""

    assert sorted(irreversible) == sorted(IRREVERSIBLE)
    for name, docstring in irreversible.items():
        assert "irreversible" in docstring.lower(), f"{name} must say in its docstring why it cannot be reversed"


@pytest.mark.parametrize("app", APPS_WITH_MIGRATIONS)
def test_migrations_go_to_zero_and_back_to_the_same_schema(app):
    (latest,) = MigrationLoader(connection).graph.leaf_nodes(app)
    before = schema()
    assert any(kind == "trigger" and "BEFORE TRUNCATE" in text for kind, text in before)

    call_command("migrate", app, "zero", verbosity=0)
    assert schema() == []

    call_command("migrate", *latest, verbosity=0)
    assert schema() == before
