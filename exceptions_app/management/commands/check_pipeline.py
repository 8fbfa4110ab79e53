"""`manage.py check_pipeline`: exit 1, saying why, when background work has no consumer or is stuck.

For monitoring and deploy scripts: /readyz stays about the web process, this is about the workers.
"""

import sys

from django.core.management.base import BaseCommand

from exceptions_app.pipeline import duration_text, pipeline_state


class Command(BaseCommand):
    help = "Check that every Celery queue has a consumer and no delivery is stuck; exit 1 if not."

    def handle(self, *args, **options) -> None:
        state = pipeline_state()
        for queue in state.queues:
            waiting = "unknown" if queue.messages is None else queue.messages
            self.stdout.write(f"queue {queue.name}: {queue.consumers} consumer(s), {waiting} message(s) waiting")
        self.stdout.write(
            f"outbox: {state.outbox_pending} pending, oldest {duration_text(state.outbox_oldest_age_seconds)}"
        )
        if state.ok:
            self.stdout.write(self.style.SUCCESS("pipeline ok"))
            return
        for problem in state.problems:
            self.stderr.write(self.style.ERROR(problem))
        sys.exit(1)
