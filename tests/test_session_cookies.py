"""The session and CSRF cookies a production deployment sets: Secure, HttpOnly and SameSite=Lax.

The cookie settings are read from the settings module in a fresh process with a production
environment (as ``test_configuration`` runs ``check --deploy``), then applied here, where a real
sign-in answers with real Set-Cookie headers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[1]
COOKIE_SETTINGS = [
    f"{cookie}_COOKIE_{flag}" for cookie in ("SESSION", "CSRF") for flag in ("SECURE", "HTTPONLY", "SAMESITE")
]
PRODUCTION = {
    "DEBUG": "false",
    "TOLLGATE_HTTPS": "true",
    "ALLOWED_HOSTS": "tollgate.example.com",
    "SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
}


def production_cookie_settings() -> dict:
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name) for name in {COOKIE_SETTINGS!r}}}))"
    )
    inherited = {key: value for key, value in os.environ.items() if key != "TOLLGATE_SECURE_COOKIES"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**inherited, **PRODUCTION, "DJANGO_SETTINGS_MODULE": "exceptions_app.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_signing_in_sets_secure_httponly_lax_session_and_csrf_cookies(django_user_model):
    django_user_model.objects.create_user("olga", password="a-long-sign-in-password")
    client = Client()

    with override_settings(**production_cookie_settings(), ALLOWED_HOSTS=["tollgate.example.com"]):
        client.get("/accounts/login/", secure=True, HTTP_HOST="tollgate.example.com")
        response = client.post(
            "/accounts/login/",
            {"username": "olga", "password": "a-long-sign-in-password"},
            secure=True,
            HTTP_HOST="tollgate.example.com",
        )

    assert response.status_code == 302
    for name in ("sessionid", "csrftoken"):
        header = response.cookies[name].output()
        assert header.startswith(f"Set-Cookie: {name}="), header
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")[1:]}
        assert "secure" in flags, header
        assert "httponly" in flags, header
        assert flags.get("samesite") == "SameSite=Lax", header
