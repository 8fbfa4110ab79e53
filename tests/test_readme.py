"""Every command and URL in README.md works as written, on a fresh clone after `make run` has run once.

The commands are read from the README's ``sh`` blocks (and `make run`'s own steps from the
Makefile, and the web process from the Procfile), not copied here: edit a command there and these
tests run the new one. What they change is listed in ``SUBSTITUTIONS`` and each skip says why.

- ``test_the_readme_after_make_run``: a checkout in a temporary folder with nothing set (no DEBUG,
  no SECRET_KEY, no DATABASE_URL): `make run`'s set-up steps on the embedded default, then every
  ``manage.py`` line of the README, then the web process, the curl lines, every URL the README
  names, and each sign-in of the demo table.
- ``test_the_production_path_by_hand``: the README's production settings, evaluated by bash,
  then each line of that section: ``check --deploy`` clean, static files collected and served by
  gunicorn with DEBUG=false, a superuser opening the console, the worker and beat starting.
"""

import os
import pty
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.workers import group_stop

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
ADDRESS = "127.0.0.1:8000"
# What the tests change in a README line, and why.
SUBSTITUTIONS = {
    ADDRESS: "a free port: other checkouts on this machine may be serving 8000",
    "tg_...": "the token that the README's create_token line printed",
    "wait=30": "wait=1: the held item stays open, so the long poll would wait its full 30 s",
    "exceptions/7": "the id the README's submit line answered",
}
# Variables a developer's shell or the test run may hold that a fresh clone would not.
UNSET_FOR_A_FRESH_CLONE = (
    "DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "TOLLGATE_CALLBACK_ALLOW",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)
SUPERUSER = {"DJANGO_SUPERUSER_USERNAME": "root", "DJANGO_SUPERUSER_EMAIL": "root@example.com"}
SUPERUSER_PASSWORD = "a long passphrase for root"


def sections() -> dict[str, str]:
    """The README's text under each ``## `` heading."""
    parts = re.split(r"^## (.+)$", README, flags=re.M)
    return {parts[index].strip(): parts[index + 1] for index in range(1, len(parts), 2)}


def sh_lines(text: str) -> list[str]:
    """The commands of the ``sh`` blocks in ``text``: continuation lines joined, and a quoted
    argument that spans lines (a JSON body) kept whole; comment lines dropped."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending = f"{pending}\n{line}" if pending else line.strip()
            try:
                shlex.split(pending)
            except ValueError:  # a quotation still open: the command goes on
                continue
            commands.append(pending)
            pending = ""
    # Commands shown inline in the prose, such as the offline schema.
    inline = [
        command for command in re.findall(r"`(\.venv/bin/python manage\.py [^`]+)`", text) if "..." not in command
    ]
    return commands + [command for command in inline if command not in commands]


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def fresh_environment(**extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in UNSET_FOR_A_FRESH_CLONE}
    return {**environment, "PYTHONUNBUFFERED": "1", **extra}


def bash(line: str, *, cwd: Path, env: dict, timeout: float = 180, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"set -eo pipefail; {line}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=stdin,
    )


def run_ok(line: str, *, cwd: Path, env: dict, timeout: float = 180) -> str:
    result = bash(line, cwd=cwd, env=env, timeout=timeout)
    assert result.returncode == 0, f"{line}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def run_with_prompt(line: str, *, cwd: Path, env: dict, answers: list[str]) -> None:
    """Run a line that asks for a password at a terminal: a pseudo-terminal types the answers."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        ["bash", "-c", line], cwd=cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal,
        start_new_session=True,
    )  # fmt: skip
    os.close(terminal)
    output = b""
    for answer in answers:
        deadline = time.monotonic() + 60
        while b"assword" not in output.rsplit(b"\n", 1)[-1] and time.monotonic() < deadline:
            output += os.read(controller, 4096)
        os.write(controller, answer.encode() + b"\n")
        output += os.read(controller, 4096)
    assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    os.close(controller)


def start(line: str, *, cwd: Path, env: dict) -> subprocess.Popen:
    """A long-running process; its output goes to a file, so a full pipe never stalls it."""
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - it lives as long as the process; stop() closes it
    process = subprocess.Popen(
        ["bash", "-c", f"exec {line}"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    process.log = log
    return process


def stop(process: subprocess.Popen) -> str:
    """Stop the process (and its children), and return what it printed."""
    group_stop(process)
    if process.log.closed:  # stopped already, for an earlier message
        return ""
    process.log.seek(0)
    output = process.log.read()
    process.log.close()
    return output + f"\n(exited with {process.returncode})"


def wait_until_up(base: str, process: subprocess.Popen, **headers: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, stop(process)
        try:
            if httpx.get(f"{base}/healthz", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError(f"{base} never answered /healthz:\n{stop(process)}")


def wait_for_worker(process: subprocess.Popen, *, cwd: Path, env: dict) -> None:
    """The worker answers a ping through the broker (it logs nothing at its default level)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, stop(process)
        if bash(".venv/bin/celery -A exceptions_app inspect ping --timeout 3", cwd=cwd, env=env).returncode == 0:
            return
    raise AssertionError(f"the worker never answered a ping:\n{stop(process)}")


def wait_for_beat(process: subprocess.Popen, schedule: Path) -> None:
    """Beat is up once it has opened its schedule file, and still running a moment later."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(schedule.parent.glob(f"{schedule.name}*")):
        assert process.poll() is None, stop(process)
        time.sleep(0.5)
    time.sleep(2)
    assert process.poll() is None, stop(process)
    assert list(schedule.parent.glob(f"{schedule.name}*")), "beat never wrote its schedule"


def checkout(tmp_path: Path) -> Path:
    """A working folder that looks like a fresh clone: the README's relative paths resolve in it."""
    folder = tmp_path / "clone"
    folder.mkdir()
    for name in ("manage.py", ".venv", "policies"):
        (folder / name).symlink_to(ROOT / name)
    return folder


def make_run_steps() -> list[str]:
    """`make run`'s recipe as bash lines, without its last step (honcho starting every process)."""
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M).group(1)
    steps = []
    for line in recipe.splitlines():
        line = line.strip().lstrip("@").replace("$(BIN)", ".venv/bin").replace("$$", "$")
        if "honcho start" not in line:
            steps.append(line)
    return steps


def procfile_command(name: str) -> str:
    return re.search(rf"^{name}: (.+)$", (ROOT / "Procfile").read_text(), flags=re.M).group(1)


def sign_in(client: httpx.Client, username: str, password: str, **headers: str) -> httpx.Response:
    form = client.get("/accounts/login/", headers=headers)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return client.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={**headers, "Referer": f"https://{client.base_url.host}/accounts/login/"},
    )


def demo_logins() -> list[tuple[str, str]]:
    return re.findall(r"^\| `(\w+)`\s*\| `([\w-]+)`", README, flags=re.M)


def readme_paths() -> list[str]:
    """Every URL path the README names in backticks (``/x``, ``GET /x``), placeholders filled in."""
    found = {
        path
        for method, path in re.findall(r"`(GET |PUT |POST )?(/[^`\s]*)`", README)
        # Files on the machine are not URLs; a PUT or POST named in prose is not fetched (its tests call it).
        if not path.startswith(("/usr/", "/etc/")) and method in ("", "GET ")
    }
    filled = {
        path.replace("{name}", "billing.invoice_adjustment")
        .replace("<cursor>", "0")
        .replace("{id}", "1")
        .replace("after=C", "after=0")
        .replace("wait=N", "wait=1")
        for path in found
        # Streams never end (Server-Sent Events, MCP's streamable HTTP): their own tests read them. No replay
        # has run in this checkout, so a replay's id names nothing: tests/test_replay_api.py reads one.
        if not path.endswith(("/stream", "/mcp")) and not path.startswith("/api/v1/replays/")
    }
    return sorted(filled)


@pytest.mark.timeout(600)
def test_the_readme_after_make_run(tmp_path):
    folder = checkout(tmp_path)
    address = free_address()
    env = fresh_environment(TOLLGATE_DATA_DIR=str(folder / "data"), **SUPERUSER)
    for step in make_run_steps():
        run_ok(step, cwd=folder, env=env)
    assert (folder / "data" / "local.env").stat().st_mode & 0o077 == 0, "the local secret must be private"

    token = None
    outside_production = README.replace(sections()["Production by hand"], "")
    for line in [line for line in sh_lines(outside_production) if "manage.py" in line]:
        if line.endswith("createsuperuser"):
            run_ok(f"{line} --no-input", cwd=folder, env={**env, "DJANGO_SUPERUSER_PASSWORD": SUPERUSER_PASSWORD})
        elif "create_person" in line and "--password-env" not in line:
            run_with_prompt(line, cwd=folder, env=env, answers=[SUPERUSER_PASSWORD] * 2)
        else:
            output = run_ok(line, cwd=folder, env=env)
            if "create_token" in line:
                token = output.strip()
    assert (token or "").startswith("tg_"), "the README's create_token line printed no token"

    # As `make run` starts it: honcho runs the Procfile with the virtualenv first on PATH.
    path = f"{folder / '.venv' / 'bin'}:{env['PATH']}"
    web = start(procfile_command("web"), cwd=folder, env={**env, "TOLLGATE_BIND": address, "PATH": path})
    base = f"http://{address}"
    try:
        wait_until_up(base, web)
        item_id = None
        # A stream (curl -N) never ends: the stream's own tests read it.
        for line in [line for line in sh_lines(README) if line.startswith("curl") and "/stream" not in line]:
            line = line.replace(ADDRESS, address).replace("tg_...", token).replace("wait=30", "wait=1")
            if item_id is not None:
                line = line.replace("exceptions/7", f"exceptions/{item_id}")
            output = run_ok(line.replace("curl ", "curl --fail-with-body ", 1), cwd=folder, env=env, timeout=60)
            if "/api/v1/decisions" in line:
                assert '"verdict":"hold"' in output.replace(" ", ""), output
                item_id = re.search(r'"exception":\s*\{"id":\s*(\d+)', output).group(1)
        assert (folder / "tollgate-openapi.yaml").read_text().startswith("openapi:")

        with httpx.Client(base_url=base, timeout=30) as supervisor:
            for username, password in demo_logins():
                with httpx.Client(base_url=base, timeout=30) as person:
                    signed_in = sign_in(person, username, password)
                    assert signed_in.status_code == 302, f"{username} could not sign in: {signed_in.text[:300]}"
                    assert person.get("/").status_code == 200, username
            assert sign_in(supervisor, "supervisor", dict(demo_logins())["supervisor"]).status_code == 302
            agent = {"Authorization": f"Bearer {token}"}
            for path in readme_paths():
                answers = [supervisor.get(path).status_code, httpx.get(base + path, headers=agent).status_code]
                # The deep readiness check answers 503 by design here: only web runs, no worker.
                allowed = {200, 503} if path.startswith("/readyz") else {200}
                assert allowed & set(answers), f"{path} answered {answers} to the supervisor and the agent"
    finally:
        stop(web)


@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_the_production_path_by_hand(tmp_path, test_database_url):
    folder = checkout(tmp_path)
    lines = sh_lines(sections()["Production by hand"])
    exports = " && ".join(line for line in lines if line.startswith("export "))
    environment_text = run_ok(f"{exports} && env -0", cwd=folder, env=fresh_environment())
    env = dict(entry.split("=", 1) for entry in environment_text.split("\0") if "=" in entry)
    assert env["DEBUG"] == "false"
    assert len(env["SECRET_KEY"]) >= 50
    # The documented database and Redis do not exist here: the suite's own stand in for them.
    env.update(
        DATABASE_URL=test_database_url,
        REDIS_URL=os.environ["REDIS_URL"],
        TOLLGATE_DATA_DIR=str(folder / "data"),
        PYTHONUNBUFFERED="1",
        **SUPERUSER,
        DJANGO_SUPERUSER_PASSWORD=SUPERUSER_PASSWORD,
    )
    (folder / "data").mkdir()
    address = free_address()
    host = env["ALLOWED_HOSTS"].split(",")[0]
    # What the TLS proxy the section asks for sends on.
    https = {"X-Forwarded-Proto": "https", "Host": host}
    started = []
    try:
        for line in [line for line in lines if not line.startswith("export ")]:
            if ".venv/bin/pip install" in line:
                continue  # the suite runs in that installed virtualenv
            if line.endswith("createsuperuser"):
                run_ok(f"{line} --no-input", cwd=folder, env=env)
            elif "gunicorn" in line:
                web = start(line.replace(ADDRESS, address), cwd=folder, env=env)
                started.append(web)
                wait_until_up(f"http://{address}", web, **https)
            elif "celery" in line:
                process = start(line, cwd=folder, env=env)
                started.append(process)
                if " worker" in line:
                    wait_for_worker(process, cwd=folder, env=env)
                else:
                    wait_for_beat(process, folder / shlex.split(line)[shlex.split(line).index("--schedule") + 1])
            else:
                run_ok(line, cwd=folder, env=env)
        assert started, "the section starts no process"

        with httpx.Client(base_url=f"http://{address}", timeout=30, headers=https) as browser:
            plain = httpx.get(f"http://{address}/accounts/login/", headers={"Host": host})
            assert plain.status_code == 301, "plain http must be sent to https"
            assert plain.headers["location"] == f"https://{host}/accounts/login/"
            page = browser.get("/accounts/login/")
            assert page.status_code == 200, page.text[:500]
            assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
            assert any(re.search(r"/css/app\.[0-9a-f]{12}\.css$", asset) for asset in assets), assets
            for asset in assets:
                served = browser.get(asset)
                assert served.status_code == 200, asset
                assert "max-age=315360000" in served.headers["cache-control"], asset
            cookies = _cookies(page)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            signed_in = browser.post(
                "/accounts/login/",
                data={"username": "root", "password": SUPERUSER_PASSWORD, "csrfmiddlewaretoken": token},
                headers={"Referer": f"https://{host}/accounts/login/", "Cookie": _cookie_header(cookies)},
            )
            assert signed_in.status_code == 302, signed_in.text[:500]
            cookies.update(_cookies(signed_in))
            console = browser.get("/", headers={"Cookie": _cookie_header(cookies)})
            assert console.status_code == 200, console.text[:500]
            assert 'href="/people"' in console.text  # a superuser is a supervisor
    finally:
        for process in started:
            stop(process)


def _cookies(response: httpx.Response) -> dict[str, str]:
    """Cookies from Set-Cookie, Secure ones included: the test speaks http to what is https behind the proxy."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        found[name] = rest.split(";", 1)[0]
    return found


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def test_the_readme_lines_these_tests_run_are_found():
    """The parsing above still finds what it must: if the README's layout changes, say so here."""
    lines = sh_lines(README)
    assert any("create_token" in line for line in lines)
    assert any("apply_policies --check" in line for line in lines)
    assert any(line.startswith("curl") and "/api/v1/decisions" in line for line in lines)
    assert "/api/v1/stats/" in readme_paths()
    assert {"alice", "bob", "supervisor"} <= dict(demo_logins()).keys()
    assert any("check --deploy" in line for line in sh_lines(sections()["Production by hand"]))
    assert shlex.split(procfile_command("web"))[0] == "gunicorn"
    assert sys.executable
