"""Bad configuration stops start-up with a message that names the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from exceptions_app import env

ROOT = Path(__file__).resolve().parents[1]


def run_check(**variables: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, **variables)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL='nonsense' is not a database URL"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379' is not a Redis URL"),
        ({"TOLLGATE_MAX_BODY_BYTES": "lots"}, "TOLLGATE_MAX_BODY_BYTES='lots' is not an integer"),
        ({"DEBUG": "false", "SECRET_KEY": ""}, "SECRET_KEY is not set"),
    ],
)
def test_bad_configuration_fails_startup_naming_the_variable(variables, message):
    result = run_check(**variables)
    assert result.returncode != 0
    assert message in result.stderr


def test_good_configuration_passes_the_system_check():
    result = run_check()
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_unset_database_url_means_sqlite_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = env.env_database("DATABASE_URL", default_sqlite_path=str(tmp_path / "db.sqlite3"), pool=True)
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "db.sqlite3")


def test_postgres_url_means_pooled_postgresql(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://app:secret@db.internal:6432/tollgate")
    config = env.env_database("DATABASE_URL", default_sqlite_path="unused", pool=True)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 6432, "tollgate")
    assert config["OPTIONS"]["pool"]["max_size"] == 10
    assert "idle_in_transaction_session_timeout" in config["OPTIONS"]["options"]


def test_postgres_url_without_a_database_name_is_refused(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://app@db.internal:5432")
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        env.env_database("DATABASE_URL", default_sqlite_path="unused", pool=False)


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("0", False), ("YES", True), ("off", False)])
def test_booleans_accept_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env.env_bool("SOME_FLAG", not expected) is expected


def test_integers_outside_their_bounds_are_refused(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "0")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER=0 is below the minimum of 1"):
        env.env_int("SOME_NUMBER", 5, minimum=1)


def test_lists_split_on_commas_and_drop_blanks(monkeypatch):
    monkeypatch.setenv("SOME_LIST", " a.example , ,b.example")
    assert env.env_list("SOME_LIST", []) == ["a.example", "b.example"]


def test_production_settings_pass_the_deployment_check():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **{key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            "DEBUG": "false",
            "TOLLGATE_HTTPS": "true",
            "ALLOWED_HOSTS": "tollgate.example.com",
            "SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
