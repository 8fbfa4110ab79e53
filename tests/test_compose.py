"""No Docker engine runs here, so the compose file is checked by parsing it."""

import ast
import importlib
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[1]
APP_SERVICES = ["migrate", "web", "worker", "beat"]


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


def test_every_variable_compose_sets_is_read_by_settings(compose):
    known = variables_read_by_settings()
    for name in APP_SERVICES:
        unknown = set(compose["services"][name]["environment"]) - known
        assert not unknown, f"{name} sets variables the settings never read: {unknown}"


def test_env_example_documents_every_variable_the_settings_read():
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert variables_read_by_settings() <= documented
