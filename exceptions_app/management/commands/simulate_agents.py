"""Simulated agents for the demo: they submit realistic outputs through the real REST API and the
Python client, receive their resolutions by signed webhook (or the resolutions feed), and resume.
With --auto-resolve, an auto-operator resolves a share of held items after a human-like delay, and
judges audit samples, both by a ground-truth error model (``scenarios.true_error``): each output
is right or wrong by its confidence, so the accountability page estimates a known truth."""

import random
import threading
import time
from collections import OrderedDict

import httpx
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from exceptions_app.client import TollgateClient, TollgateError
from exceptions_app.delivery.url_guard import callback_url_check
from exceptions_app.errors import InvalidInput
from exceptions_app.models import Workflow
from exceptions_app.services.tokens import principal_ensure, token_create, token_revoke
from exceptions_app.simulation.receiver import ResolutionReceiver
from exceptions_app.simulation.scenarios import SCENARIOS, proposal, true_error

REJECT_REASONS = ["not_justified", "wrong_counterparty", "policy_violation", "duplicate"]
TRUTHS_KEPT = 50_000


AUTO_OPERATORS = ("auto-operator", "auto-checker")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--rate", type=float, default=2.0, help="outputs per second across all workflows")
        parser.add_argument("--workflows", default=",".join(SCENARIOS), help="comma-separated")
        parser.add_argument("--auto-resolve", action="store_true", help="resolve a share of held items")
        parser.add_argument("--auto-share", type=float, default=0.6, help="share of held items auto-resolved")
        parser.add_argument(
            "--delay",
            type=float,
            nargs=2,
            default=(2.0, 12.0),
            metavar=("MIN", "MAX"),
            help="seconds the auto-operator 'reads' an item",
        )
        parser.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: run on)")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--error-shift",
            type=float,
            default=0.0,
            help="add this to the true error rate of every output (e.g. 0.2 to watch the breaker trip)",
        )

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def handle(
        self,
        *args,
        url: str,
        rate: float,
        workflows: str,
        auto_resolve: bool,
        auto_share: float,
        delay: tuple[float, float],
        duration: float,
        seed: int | None,
        error_shift: float = 0.0,
        **options,
    ) -> None:
        names = [name.strip() for name in workflows.split(",") if name.strip()]
        unknown = sorted(set(names) - set(SCENARIOS))
        if unknown:
            raise CommandError(f"no scenario for {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
        if rate <= 0:
            self.say("simulate_agents: rate is 0, agents stay idle")
            while True:
                time.sleep(3600)
        self.rng = random.Random(seed)  # noqa: S311 - simulated traffic, not secrets
        self.error_shift = error_shift
        # Whether each submitted output is truly wrong, by correlation id: what the reviewer "knows".
        self.truth: OrderedDict[str, bool] = OrderedDict()
        self.truth_lock = threading.Lock()
        self._secret_cache: dict[str, str] = {}
        self._secrets_read_at = float("-inf")
        self.stopping = threading.Event()
        self._wait_for(url)
        agent_token = self._fresh_token("demo-agent", "agent", workflows=names)
        receiver = ResolutionReceiver(secrets=self._secrets, on_resolution=self._resume)
        try:
            callback_url_check(receiver.url)
            receiver.start()
            callback = receiver.url
            self.say(f"simulate_agents: receiving resolutions by signed webhook at {receiver.url}")
        except InvalidInput:
            callback = ""
            self.say("simulate_agents: loopback callbacks are not allowed here; reading the resolutions feed")
            threading.Thread(target=self._follow_feed, args=(url, agent_token), daemon=True).start()
        if auto_resolve:
            # Two people, so that what a policy gives to two approvers (four eyes) gets its second pair of eyes.
            for name in AUTO_OPERATORS:
                operator_token = self._fresh_token(name, "supervisor")
                threading.Thread(
                    target=self._auto_operator, args=(url, operator_token, name, auto_share, delay), daemon=True
                ).start()
            self.say(f"simulate_agents: auto-operator resolves about {auto_share:.0%} of held items")
            self.say("simulate_agents: auto-checker is the second approver where a policy asks for two")
        try:
            self._submit_loop(url, agent_token, names, rate, callback, duration)
        finally:
            self.stopping.set()
            if callback:
                receiver.stop()

    def _wait_for(self, url: str) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise CommandError(f"{url} did not answer within 120 seconds")

    def _fresh_token(self, name: str, role: str, **scope) -> str:
        principal = principal_ensure(name=name, role=role, **scope)
        for token in principal.tokens.filter(revoked_at__isnull=True):
            token_revoke(token=token)
        return token_create(principal=principal)[1]

    def _secrets(self) -> dict[str, str]:
        """Signing secrets, cached for 30 seconds. Called from the receiver's threads, which must
        hand their database connection back to the pool themselves."""
        now = time.monotonic()
        if now - self._secrets_read_at > 30:
            try:
                self._secret_cache = dict(Workflow.objects.values_list("name", "webhook_secret"))
                self._secrets_read_at = now
            finally:
                connection.close()
        return self._secret_cache

    def _resume(self, payload: dict) -> None:
        output = payload.get("final_output")
        self.say(
            f"  resumed {payload.get('correlation_id') or payload.get('item_id')}: {payload.get('verdict')} "
            f"by {payload.get('resolver', 'the gate')}{'' if output is None else ' with the decided output'}"
        )

    def _submit_loop(self, url, token, names, rate, callback, duration) -> None:
        started, number = time.monotonic(), 0
        with TollgateClient(url, token) as tollgate:
            while not duration or time.monotonic() - started < duration:
                number += 1
                workflow = self.rng.choice(names)
                case = proposal(workflow, self.rng, number)
                try:
                    if workflow == "operations.exception_handling" and self.rng.random() < 0.08:
                        item = tollgate.report(
                            workflow,
                            reason="tool_failure",
                            severity="high",
                            message=(f"{case['output']['failed_tool']} failed {case['output']['attempts']} times"),
                            context=case.get("context"),
                            correlation_id=case["correlation_id"],
                            callback_url=callback,
                        )
                        self.say(f"{case['correlation_id']}: reported a failure -> item {item['id']}")
                    else:
                        self._remember(case)
                        answer = tollgate.submit(workflow, callback_url=callback, **case)
                        held = answer["exception"]
                        where = f" -> item {held['id']} in {held['queue']}" if held else ""
                        self.say(
                            f"{case['correlation_id']}: {answer['verdict']} (confidence {case['confidence']}){where}"
                        )
                except (TollgateError, httpx.HTTPError) as error:
                    self.say(f"{case['correlation_id']}: not accepted ({error})")
                time.sleep(max(0.0, self.rng.expovariate(rate)))

    def _remember(self, case: dict) -> None:
        wrong = self.rng.random() < true_error(case["confidence"], shift=self.error_shift)
        with self.truth_lock:
            self.truth[case["correlation_id"]] = wrong
            while len(self.truth) > TRUTHS_KEPT:
                self.truth.popitem(last=False)

    def _truly_wrong(self, correlation_id: str) -> bool | None:
        with self.truth_lock:
            return self.truth.get(correlation_id)

    def _follow_feed(self, url: str, token: str) -> None:
        with TollgateClient(url, token) as tollgate:
            after = None
            while not self.stopping.is_set():
                try:
                    results, after = tollgate.resolutions(after=after)
                except (TollgateError, httpx.HTTPError):
                    time.sleep(2)
                    continue
                for payload in results:
                    self._resume(payload)
                if not results:
                    time.sleep(2)

    def _auto_operator(self, url: str, token: str, name: str, share: float, delay: tuple[float, float]) -> None:
        with TollgateClient(url, token) as tollgate:
            while not self.stopping.is_set():
                try:
                    self._auto_round(tollgate, name, share, delay)
                except (TollgateError, httpx.HTTPError) as error:
                    self.say(f"  {name}: {error}")
                time.sleep(1)

    def _auto_round(self, tollgate: TollgateClient, name: str, share: float, delay: tuple[float, float]) -> None:
        page = tollgate.request("GET", "/api/v1/exceptions", params={"status": "open", "page_size": 50})
        # Every audit sample is judged (quickly: a yes or no), and a share of the holds. One operator
        # takes holds first and the other audits first, so neither starves the other: with the
        # policies auditing 30% of proceeds, audits alone would keep both busy and no hold would move.
        audits = [item for item in page["results"] if item.get("kind") == "audit"]
        holds = [
            item for item in page["results"] if item.get("kind") != "audit" and (item["id"] * 7919) % 100 < share * 100
        ]
        first, then = (holds, audits) if name == AUTO_OPERATORS[0] else (audits, holds)
        mine = first or then
        claimed = None
        for item in sorted(mine, key=lambda entry: entry["due_at"])[:5]:
            try:
                claimed = tollgate.request("POST", f"/api/v1/exceptions/{item['id']}/claim")
                break
            except TollgateError:
                continue  # a person took it first, or this operator already approved it
        if claimed is None:
            return
        low, high = delay
        quick = claimed.get("kind") == "audit"
        time.sleep(self.rng.uniform(low / 4, high / 4) if quick else self.rng.uniform(low, high))
        body = self._judgement(claimed)
        item_id = claimed["id"]
        try:
            answer = tollgate.request("POST", f"/api/v1/exceptions/{item_id}/resolve", json=body)
        except TollgateError as error:
            self.say(f"  {name}: could not resolve item {item_id}: {error.message}")
            return
        consensus = answer.get("consensus") or {}
        if answer["status"] != "resolved" and consensus.get("kind") == "approvals":
            count = f"{consensus['approvals']} of {consensus['required']} approvals"
            self.say(f"  {name}: {body['action']} on item {item_id} ({count}): it waits for a second person")
        else:
            label = "judged audit" if quick else "resolved"
            self.say(f"  {name}: {label} item {item_id}: {body['action']}")

    def _judgement(self, claimed: dict) -> dict:
        """Approve what is truly right; reject (or correct) what is truly wrong. Items with no known
        truth (reported failures, outputs from before a restart) get the old mix."""
        votes = (claimed.get("consensus") or {}).get("votes") or []
        if votes and votes[-1]["vote"] == "modify":
            return {"action": "approve", "note": "checked the corrected output"}  # four eyes on the correction
        wrong = self._truly_wrong(claimed.get("correlation_id") or "")
        if wrong is None:
            roll = self.rng.random()
            wrong = roll >= 0.75
        if not wrong:
            return {"action": "approve"}
        if claimed["captured"]["proposal"] and self.rng.random() < 0.4:
            return {"action": "modify", "output": claimed["captured"]["proposal"], "note": "checked and corrected"}
        return {"action": "reject", "reason_code": self.rng.choice(REJECT_REASONS)}
