"""Passwords given to management commands: from the environment, never from the command line."""

import os

from django.core.management.base import CommandError


def password_from_environment(variable: str) -> str:
    """The password in the environment variable named by ``--password-env``. Unset or empty is an
    error: a command never sets an empty password."""
    password = os.environ.get(variable, "")
    if not password:
        raise CommandError(f"--password-env {variable}: that environment variable is unset or empty")
    return password
