from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from exceptions_app.models import PolicySource
from exceptions_app.policy.document import PolicyError, policy_document_errors
from exceptions_app.services.policies import policy_publish


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

    def handle(self, *args, paths: list[str], check: bool, **options) -> None:
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
