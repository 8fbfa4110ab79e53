"""No Docker engine runs here, so the compose file is checked by parsing it."""

import ast
import importlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = ["migrate", "grant-app-role", "web", "worker", "beat"]
RUNNING_SERVICES = ["web", "worker", "beat"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def variables_read_by_settings() -> set[str]:
    """Every NAME in env_*("NAME", ...) calls of the settings module."""
    tree = ast.parse((ROOT / "exceptions_app" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("env_")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
    return names


def test_compose_has_the_five_services_with_health_checks(compose):
    services = compose["services"]
    for name in ["db", "redis", "web", "worker", "beat"]:
        assert name in services, name
        assert "healthcheck" in services[name], name
    assert services["db"]["image"].startswith("postgres:16")


def test_app_services_wait_for_healthy_engines(compose):
    for name in APP_SERVICES:
        depends_on = compose["services"][name]["depends_on"]
        assert depends_on["db"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name


def test_every_app_command_names_a_real_module(compose):
    for name in APP_SERVICES:
        command = compose["services"][name]["command"]
        if command[0] == "gunicorn":
            module_name, _, attribute = command[1].partition(":")
            module = importlib.import_module(module_name)
            assert hasattr(module, attribute or "application"), name
        elif command[0] == "celery":
            app_module = command[command.index("-A") + 1]
            assert hasattr(importlib.import_module(app_module), "celery_app"), name
            assert command[3] in {"worker", "beat"}, name
        elif command[:2] == ["python", "manage.py"]:
            assert command[2] in get_commands(), name
        else:
            pytest.fail(f"{name}: unrecognised command {command}")


def _variables_named_on_the_command_line(command: list[str]) -> set[str]:
    return {command[index + 1] for index, word in enumerate(command) if word == "--password-env"}


def test_every_variable_compose_sets_is_read_by_settings(compose):
    known = variables_read_by_settings()
    for name in APP_SERVICES:
        service = compose["services"][name]
        unknown = set(service["environment"]) - known - _variables_named_on_the_command_line(service["command"])
        assert not unknown, f"{name} sets variables the settings never read: {unknown}"


def test_env_example_documents_every_variable_the_settings_read():
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert variables_read_by_settings() <= documented


def _database_user(service: dict) -> str:
    return urlsplit(service["environment"]["DATABASE_URL"]).username


def test_web_workers_and_beat_connect_as_the_app_role_not_a_superuser(compose):
    services = compose["services"]
    # The postgres image makes POSTGRES_USER a superuser, as "postgres" always is.
    superusers = {"postgres", services["db"]["environment"]["POSTGRES_USER"]}
    grant = services["grant-app-role"]["command"]
    app_role = grant[grant.index("grant_app_role") + 1]
    granted_password = services["grant-app-role"]["environment"]["TOLLGATE_APP_DB_PASSWORD"]

    for name in RUNNING_SERVICES:
        user = _database_user(services[name])
        assert user not in superusers, f"{name} connects to PostgreSQL as the superuser {user}"
        assert user == app_role, f"{name} connects as {user}, but grant_app_role grants {app_role}"
        assert urlsplit(services[name]["environment"]["DATABASE_URL"]).password == granted_password, name
        assert services[name]["depends_on"]["grant-app-role"]["condition"] == "service_completed_successfully", name


def test_migrations_and_grants_run_as_the_owner_in_that_order(compose):
    services = compose["services"]
    owner = services["db"]["environment"]["POSTGRES_USER"]

    assert services["migrate"]["command"][2] == "migrate"
    assert _database_user(services["migrate"]) == owner
    assert _database_user(services["grant-app-role"]) == owner
    assert services["grant-app-role"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    password_variable = _variables_named_on_the_command_line(services["grant-app-role"]["command"]).pop()
    assert password_variable in services["grant-app-role"]["environment"]
