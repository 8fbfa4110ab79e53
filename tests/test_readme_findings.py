"""What a new user found not working as the README said: commands outside `make run`, the stats
index, the API docs, and the dead letters' CSV."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from exceptions_app.local_env import local_env_read, local_env_write
from exceptions_app.models import Delivery
from tests.fixtures.gate import dead_letter

ROOT = Path(__file__).resolve().parents[1]


def _manage(*arguments: str, **variables: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env={**environment, **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_commands_outside_make_run_use_the_local_file_it_wrote(tmp_path):
    refused = _manage("check", TOLLGATE_DATA_DIR=str(tmp_path))
    assert refused.returncode == 2
    assert "SECRET_KEY is not set" in refused.stderr
    assert "run `make run` once" in refused.stderr

    assert local_env_write(tmp_path / "local.env")

    accepted = _manage("check", TOLLGATE_DATA_DIR=str(tmp_path))
    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "local.env").stat().st_mode & 0o777 == 0o600


def test_a_deployment_that_sets_debug_never_reads_the_local_file(tmp_path):
    local_env_write(tmp_path / "local.env")

    result = _manage("check", TOLLGATE_DATA_DIR=str(tmp_path), DEBUG="false")

    assert result.returncode == 2
    assert "SECRET_KEY is not set" in result.stderr
    assert local_env_read(tmp_path / "local.env", {"DEBUG": "false"}) == {}


def test_the_local_file_is_written_once_with_a_fresh_secret(tmp_path):
    first, second = tmp_path / "a" / "local.env", tmp_path / "b" / "local.env"

    assert local_env_write(first)
    assert not local_env_write(first)
    local_env_write(second)

    values = local_env_read(first, {})
    assert values["DEBUG"] == "true"
    assert len(values["SECRET_KEY"]) >= 50
    assert values["SECRET_KEY"] != local_env_read(second, {})["SECRET_KEY"]


@pytest.mark.django_db
def test_the_stats_index_lists_every_table_and_each_answers(supervisor_client, operator_client):
    response = supervisor_client.get("/api/v1/stats/")

    assert response.status_code == 200
    tables = {table["name"]: table for table in response.json()["tables"]}
    assert {"queues", "workflows", "latency", "operators", "capacity"} <= set(tables)
    for table in tables.values():
        assert table["summary"], table
        assert supervisor_client.get(table["url"]).status_code == 200, table
    assert operator_client.get("/api/v1/stats/").status_code == 403


@pytest.mark.django_db
def test_the_api_docs_send_a_browser_without_a_session_to_sign_in(supervisor_client, agent_client):
    anonymous = Client()

    docs = anonymous.get("/api/docs/")

    assert docs.status_code == 302
    assert docs["Location"] == "/accounts/login/?next=/api/docs/"
    assert anonymous.get("/api/schema/").status_code == 401
    assert APIClient().get("/api/docs/", HTTP_AUTHORIZATION="Bearer tg_forged").status_code == 401
    assert agent_client.get("/api/schema/").status_code == 200
    signed_in = Client()
    signed_in.force_login(supervisor_client.principal.user)
    assert signed_in.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_dead_letters_export_as_csv_like_every_other_table(agent_client, operator_client, supervisor_client):
    item_id = dead_letter(agent_client, operator_client, last_error="=HYPERLINK(evil)")
    supervisor = Client()
    supervisor.force_login(supervisor_client.principal.user)

    page = supervisor.get("/dashboard").content.decode()
    response = supervisor.get("/dashboard/export/dead-letters.csv")

    assert 'href="/dashboard/export/dead-letters.csv"' in page
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="tollgate-dead-letters.csv"'
    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    delivery = Delivery.objects.get(item_id=item_id)
    assert row["delivery"] == delivery.public_id
    assert (row["item"], row["attempts"], row["target"]) == (str(item_id), "12", "http://127.0.0.1:9/unreachable")
    assert row["last_error"] == "'=HYPERLINK(evil)"
