from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from exceptions_app.errors import InvalidInput
from exceptions_app.models import PolicySource, Workflow
from exceptions_app.policy.document import PolicyError, policy_document_checksum, policy_document_errors
from exceptions_app.services.policies import policy_publish
from exceptions_app.services.replay import (
    VERDICTS,
    ReplayWindow,
    expected_errors_text,
    policy_replay,
    replay_window_parse,
)


def replay_report(answer: dict) -> list[str]:
    """The matrix (current verdict in rows, draft in columns), review rates and would_leak, as text."""
    width = 9
    lines = ["  current \\ draft" + "".join(verdict.rjust(width) for verdict in VERDICTS)]
    for current in VERDICTS:
        row = answer["matrix"][current]
        lines.append(f"  {current:<15}" + "".join(str(row[draft]).rjust(width) for draft in VERDICTS))
    rate = answer["review_rate"]
    shown = {key: "-" if value is None else f"{value:.1%}" for key, value in rate.items()}
    lines.append(f"  review rate {shown['current']} -> {shown['draft']}; changed {answer['changed']}")
    lines.append(f"  would_leak {answer['would_leak']} (held outputs people corrected that the draft lets proceed)")
    lines.append(f"  {expected_errors_text(answer['expected_unattended_errors'])}")
    for rule in answer["rules"]:
        if rule["current"] != rule["draft"] or rule["draft_errors"]:
            errors = f", {rule['draft_errors']} errors" if rule["draft_errors"] else ""
            lines.append(f"  rule {rule['code']}: fires {rule['current']} -> {rule['draft']}{errors}")
    return lines


def _load(path: Path) -> tuple[object, list[PolicyError]]:
    try:
        return yaml.safe_load(path.read_text()), []
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        return None, [PolicyError(path="", message=f"not valid YAML: {error}")]


class Command(BaseCommand):
    help = "Validate policy files (one workflow each) and publish a new version where one changed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help="policy files or folders of *.yaml / *.yml files")
        parser.add_argument("--check", action="store_true", help="validate only; write nothing (for CI)")
        parser.add_argument(
            "--replay",
            metavar="WINDOW",
            help="before publishing, replay each changed policy over the recorded decisions of WINDOW "
            "(7d, 12h, 30m, or a number of decisions) and print what it would change",
        )

    def handle(self, *args, paths: list[str], check: bool, replay: str | None = None, **options) -> None:
        try:
            window = replay_window_parse(replay) if replay is not None else None
        except InvalidInput as error:
            raise CommandError(f"--replay {replay!r}: {error.message}") from None
        files: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                files += sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"{raw}: no such file or folder")
        if not files:
            raise CommandError("no policy files found")

        documents: list[tuple[Path, dict]] = []
        failures = 0
        workflows_seen: dict[str, Path] = {}
        for path in files:
            document, errors = _load(path)
            if not errors:
                errors = policy_document_errors(document)
            if not errors and document["workflow"] in workflows_seen:
                errors = [PolicyError("workflow", f"also defined in {workflows_seen[document['workflow']]}")]
            if errors:
                failures += 1
                for error in errors:
                    rule = f" rule {error.rule}:" if error.rule else ""
                    where = f" {error.path}:" if error.path else ""
                    self.stderr.write(f"{path}:{rule}{where} {error.message}")
                continue
            workflows_seen[document["workflow"]] = path
            documents.append((path, document))
        if failures:
            raise CommandError(f"{failures} of {len(files)} policy files are invalid; nothing was published")
        if window is not None:
            for path, document in documents:
                self._replay(path, document, window, replay)

        if check:
            self.stdout.write(self.style.SUCCESS(f"{len(files)} policy files are valid"))
            return
        # All files or none: a run that fails half-way leaves the previous versions in force.
        lines = []
        with transaction.atomic():
            for path, document in documents:
                version, published = policy_publish(document=document, source=PolicySource.FILE)
                state = f"published v{version.version}" if published else f"unchanged (v{version.version})"
                lines.append(f"{document['workflow']}: {state} from {path}")
                if published and version.version == 1:
                    lines.append(f"  webhook signing secret (shown once): {version.workflow.webhook_secret}")
        self.stdout.write("\n".join(lines))

    def _replay(self, path: Path, document: dict, window: ReplayWindow, label: str) -> None:
        workflow = Workflow.objects.select_related("current_policy").filter(name=document["workflow"]).first()
        name = document["workflow"]
        if workflow is None or workflow.current_policy is None:
            self.stdout.write(f"{name} ({path}): new workflow, no recorded decisions to replay")
            return
        if workflow.current_policy.checksum == policy_document_checksum(document):
            self.stdout.write(f"{name} ({path}): unchanged (v{workflow.current_policy.version}), not replayed")
            return
        answer = policy_replay(workflow=workflow, document=document, window=window, sample_limit=0)
        scope = f"the last {label}" if window.limit is None else f"the last {window.limit} decisions"
        self.stdout.write(
            f"{name} ({path}): replayed {answer['decisions']} decisions of {scope} "
            f"against v{workflow.current_policy.version}"
        )
        self.stdout.write("\n".join(replay_report(answer)))
