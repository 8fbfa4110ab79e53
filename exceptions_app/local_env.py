"""The local settings that `make run` writes once and every later command reads: ``data/local.env``.

`make run` needs DEBUG=true and a SECRET_KEY; a management command run by hand afterwards
(``manage.py create_token ...``) needs the same, or it stops with "SECRET_KEY is not set". So
`make run` writes them to a git-ignored file under the data folder (a random secret, mode 0600),
and the settings read it, but only when the environment does not set DEBUG. A deployment sets
DEBUG=false (the README's production settings and docker-compose do), never reads the file, and
so never runs on a key it did not choose.

Run as ``python -m exceptions_app.local_env PATH``: it must work before Django's settings can load.
"""

import os
import secrets
import sys
from pathlib import Path

from dotenv import dotenv_values

# The variables `make run` sets for every process; the file holds them so that commands get them too.
LOCAL_DEFAULTS = {"DEBUG": "true", "TOLLGATE_CALLBACK_ALLOW": "127.0.0.1"}


def local_env_write(path: Path) -> bool:
    """Create the file with a fresh secret unless it exists; True when it was created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by `make run` for this checkout only (git-ignored). Never copy it to a server.",
        *(f"{name}={value}" for name, value in LOCAL_DEFAULTS.items()),
        f"SECRET_KEY={secrets.token_urlsafe(50)}",
    ]
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(lines) + "\n")
    return True


def local_env_read(path: Path, environ: dict[str, str] | os._Environ = os.environ) -> dict[str, str]:
    """The file's variables, or nothing when the environment sets DEBUG (a deliberate configuration)."""
    if environ.get("DEBUG", "").strip() or not path.is_file():
        return {}
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


if __name__ == "__main__":
    target = Path(sys.argv[1])
    if local_env_write(target):
        sys.stdout.write(f"Wrote {target}: DEBUG=true and a new SECRET_KEY for local runs and commands.\n")
