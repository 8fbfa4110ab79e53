"""Replay: what a draft policy would have done to the decisions the gate recorded.

Each recorded decision (output, input, context, confidence, value at risk) goes through the gate's
own ``policy_evaluate`` with the draft compiled once, so thresholds, the output schema, every rule
and a failing rule holding its output mean exactly what they mean at the gate. Rows stream from a
server-side cursor inside a read-only transaction: a replay cannot write to the live tables.

"Current" is what the gate recorded at the time (its verdict and reasons), not a re-evaluation of
today's published policy, so replaying the published policy over decisions it made gives a
diagonal matrix.
"""

import json
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from exceptions_app.accountability import estimates
from exceptions_app.accountability.estimates import band_index
from exceptions_app.errors import InvalidInput
from exceptions_app.models import GateDecision, Resolution, Verdict, Workflow
from exceptions_app.policy.document import policy_document_checksum, policy_document_validate
from exceptions_app.policy.evaluation import policy_build, policy_evaluate
from exceptions_app.rules import iso_timestamp
from exceptions_app.services.judgements import JUDGED
from exceptions_app.services.tallies import BANDS
from exceptions_app.strict_json import INT_MAX

# confidence_band's lookup (the first band whose upper bound exceeds the confidence), by bisection.
_BAND_UPPERS = [upper for upper, _ in BANDS]

VERDICTS = (Verdict.PROCEED.value, Verdict.HOLD.value, Verdict.REJECT.value)
# Reason codes the gate itself writes (not rules of the policy).
CHECKS = ("below_auto_reject", "output_schema_invalid", "low_confidence")
CHUNK_SIZE = 2000
# People corrected these outputs: letting them proceed unattended would have let a mistake through.
CORRECTED = frozenset({Resolution.MODIFY.value, Resolution.REJECT.value})


@dataclass(frozen=True, kw_only=True)
class ReplayWindow:
    """Recorded decisions created in [since, until), or only the last ``limit`` of them."""

    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None

    def resolved(self, *, now: datetime) -> "ReplayWindow":
        """A window with no bound at all means the last TOLLGATE_REPLAY_DEFAULT_DAYS days."""
        if self.since is None and self.until is None and self.limit is None:
            return ReplayWindow(since=now - timedelta(days=settings.TOLLGATE_REPLAY_DEFAULT_DAYS))
        return self

    def as_dict(self) -> dict:
        return {
            "since": iso_timestamp(self.since),
            "until": iso_timestamp(self.until),
            "limit": self.limit,
        }


_WINDOW_TEXT = re.compile(r"^(\d{1,7})([dhm]?)$")
_WINDOW_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def replay_window_parse(text: str, *, now: datetime | None = None) -> ReplayWindow:
    """``7d``, ``12h`` or ``30m``: the decisions of that long ago until now; a bare number: the last N."""
    found = _WINDOW_TEXT.match(text.strip())
    if not found or int(found[1]) == 0:
        raise InvalidInput(
            "give a window such as 7d, 12h or 30m, or a number of decisions",
            fields=[{"path": "window", "message": "7d, 12h, 30m or a number of decisions"}],
        )
    amount, unit = int(found[1]), found[2]
    if not unit:
        return ReplayWindow(limit=amount)
    return ReplayWindow(since=(now or timezone.now()) - timedelta(**{_WINDOW_UNITS[unit]: amount}))


def replay_draft_check(*, workflow: Workflow, document: object) -> dict:
    """The draft, validated as a publishable policy of ``workflow`` (PolicyInvalid names the rule
    and the parser's message; a draft of another workflow is InvalidInput)."""
    if isinstance(document, dict) and "workflow" not in document:
        document = {"workflow": workflow.name, **document}
    policy_document_validate(document)
    if document["workflow"] != workflow.name:
        raise InvalidInput(
            "the draft is a policy of another workflow",
            fields=[{"path": "policy.workflow", "message": f"must be {workflow.name!r} or absent"}],
        )
    return document


def _window_queryset(workflow: Workflow, window: ReplayWindow):
    decisions = GateDecision.objects.filter(workflow=workflow)
    if window.since is not None:
        decisions = decisions.filter(created_at__gte=window.since)
    if window.until is not None:
        decisions = decisions.filter(created_at__lt=window.until)
    return decisions


def replay_window_count(*, workflow: Workflow, window: ReplayWindow) -> int:
    """How many recorded decisions the window holds (to choose between answering at once and a job)."""
    window = window.resolved(now=timezone.now())
    count = _window_queryset(workflow, window).count()
    return min(count, window.limit) if window.limit is not None else count


def _json(text):
    """A jsonb column as the gate saw it. PostgreSQL hands jsonb over as text here; orjson reads it
    fastest. An integer past 64 bits can only have been a float at intake (the gate refuses such
    integers), written out in full by jsonb, so it is read back as the float it was."""
    if text is None or not isinstance(text, str | bytes):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, parse_int=lambda digits: int(digits) if abs(int(digits)) <= INT_MAX else float(digits))


def _rows(workflow: Workflow, window: ReplayWindow, chunk_size: int) -> Iterator[tuple]:
    """Decisions of the window with their item's id and resolution, from a server-side cursor."""
    decisions = _window_queryset(workflow, window)
    decisions = decisions.order_by("-id")[: window.limit] if window.limit is not None else decisions.order_by("id")
    query = decisions.values_list(
        "id",
        "verdict",
        "confidence",
        "reasons",
        "output",
        "input",
        "context",
        "value_at_risk",
        "item__id",
        "item__resolution",
        "audit_probability",
    )
    sql, params = query.query.sql_with_params()
    # Django's chunked cursor is a named (server-side) cursor on PostgreSQL: rows arrive chunk_size
    # at a time, never the whole window in memory. JSON columns are decoded here, not by the ORM.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            chunk = cursor.fetchmany(chunk_size)
            if not chunk:
                return
            yield from chunk


def _reasons_shown(reasons) -> list[dict]:
    shown = []
    for reason in reasons or []:
        if not isinstance(reason, dict):
            continue
        entry = {"code": reason.get("code", "?")}
        if "error" in reason:
            entry["error"] = reason["error"]
        if "errors" in reason:
            entry["errors"] = reason["errors"][:3]
        shown.append(entry)
    return shown


class _Tally:
    """The answer, accumulated one replayed decision at a time."""

    def __init__(self, *, rule_codes: list[str], sample_limit: int, band_width: float):
        self.rule_codes = rule_codes
        self.sample_limit = sample_limit
        self.decisions = 0
        self.matrix = {current: dict.fromkeys(VERDICTS, 0) for current in VERDICTS}
        self.current_codes: Counter = Counter()
        self.draft_codes: Counter = Counter()
        self.draft_errors: Counter = Counter()
        # The dashboard's confidence bands, so the two read alike.
        self.bands = {
            label: {"current": dict.fromkeys(VERDICTS, 0), "draft": dict.fromkeys(VERDICTS, 0)} for _, label in BANDS
        }
        self.band_list = list(self.bands.values())
        self.judgements = Counter()
        self.leak_samples: list[dict] = []
        self.other_samples: list[dict] = []
        # For the expected unattended errors: the draft's proceeds per accountability band, and
        # what people said about those of them they judged, as (wrong, inverse-probability weight).
        self.band_width = band_width
        self.draft_proceeds: Counter = Counter()
        self.judged_proceeds: dict[int, list[tuple[bool, float]]] = {}

    def add(
        self,
        decision_id: int,
        current: str,
        confidence: float,
        reasons: list,
        item_id,
        resolution,
        audit_probability,
        evaluation,
    ):
        draft = evaluation.verdict
        self.decisions += 1
        self.matrix[current][draft] += 1
        # The gate writes each code at most once per decision, so counting reasons counts decisions.
        current_codes, draft_codes = self.current_codes, self.draft_codes
        for reason in reasons:
            code = reason.get("code", "?") if isinstance(reason, dict) else "?"
            current_codes[code] += 1
        for reason in evaluation.reasons:
            draft_codes[reason["code"]] += 1
            if "error" in reason:
                self.draft_errors[reason["code"]] += 1
        band = self.band_list[bisect_right(_BAND_UPPERS, confidence)]
        band["current"][current] += 1
        band["draft"][draft] += 1

        leak = resolution in CORRECTED and draft == Verdict.PROCEED
        if resolution:
            self.judgements[f"{resolution}:{draft}"] += 1
        if draft == Verdict.PROCEED:
            index = band_index(confidence, self.band_width)
            self.draft_proceeds[index] += 1
            if resolution in JUDGED:
                # A hold was put before people for sure; an audit copy with its sampling probability.
                weight = 1.0 if current == Verdict.HOLD or not audit_probability else 1.0 / audit_probability
                self.judged_proceeds.setdefault(index, []).append((resolution in CORRECTED, weight))
        if current == draft:
            return
        samples = self.leak_samples if leak else self.other_samples
        if len(samples) < self.sample_limit:
            samples.append(
                {
                    "decision_id": decision_id,
                    "item_id": item_id,
                    "confidence": confidence,
                    "judgement": resolution or None,
                    "would_leak": leak,
                    "current": {"verdict": current, "reasons": _reasons_shown(reasons)},
                    "draft": {"verdict": draft, "reasons": _reasons_shown(evaluation.reasons)},
                }
            )

    def _judged(self, resolutions, draft_verdicts) -> int:
        return sum(self.judgements[f"{resolution}:{draft}"] for resolution in resolutions for draft in draft_verdicts)

    def answer(self, *, workflow: Workflow, window: ReplayWindow, document: dict) -> dict:
        decisions = self.decisions
        held_now = sum(self.matrix[Verdict.HOLD].values())
        held_draft = sum(self.matrix[current][Verdict.HOLD] for current in VERDICTS)
        removed = sorted(code for code in self.current_codes if code not in self.rule_codes and code not in CHECKS)
        approved = [Resolution.APPROVE.value]
        corrected = sorted(CORRECTED)
        return {
            "workflow": workflow.name,
            "current_version": workflow.current_policy.version if workflow.current_policy_id else None,
            "window": window.as_dict(),
            "decisions": decisions,
            "changed": decisions - sum(self.matrix[verdict][verdict] for verdict in VERDICTS),
            "matrix": self.matrix,
            "review_rate": {
                "current": round(held_now / decisions, 6) if decisions else None,
                "draft": round(held_draft / decisions, 6) if decisions else None,
            },
            "rules": [
                {
                    "code": code,
                    "current": self.current_codes[code],
                    "draft": self.draft_codes[code],
                    "draft_errors": self.draft_errors[code],
                    "in_draft": code in self.rule_codes,
                }
                for code in [*self.rule_codes, *removed]
            ],
            "checks": [
                {"code": code, "current": self.current_codes[code], "draft": self.draft_codes[code]} for code in CHECKS
            ],
            "bands": [
                {"band": label, "decisions": sum(band["current"].values()), **band}
                for label, band in self.bands.items()
            ],
            # Held items people modified or rejected that the draft would let proceed unattended.
            "would_leak": self._judged(corrected, [Verdict.PROCEED]),
            "judgements": {
                "judged": sum(self.judgements.values()),
                # Reviews that found nothing wrong which the draft no longer asks for ...
                "effort_saved": self._judged(approved, [Verdict.PROCEED]),
                # ... and those it still asks for (people approved them as they were).
                "effort_lost": self._judged(approved, [Verdict.HOLD]),
                # Outputs people approved as they were that the draft would reject outright.
                "would_reject_approved": self._judged(approved, [Verdict.REJECT]),
                # Known mistakes the draft still holds or rejects.
                "still_caught": self._judged(corrected, [Verdict.HOLD, Verdict.REJECT]),
            },
            "newly_held": self.matrix[Verdict.PROCEED][Verdict.HOLD],
            "expected_unattended_errors": unattended_errors_expected(
                proceeds=self.draft_proceeds, judged=self.judged_proceeds, band_width=self.band_width
            ),
            "samples": (self.leak_samples + self.other_samples)[: self.sample_limit],
            "draft_checksum": None,
            "draft_rules": len(self.rule_codes),
            "draft_thresholds": document["thresholds"],
        }


def unattended_errors_expected(
    *, proceeds: dict[int, int], judged: dict[int, list[tuple[bool, float]]], band_width: float
) -> dict | None:
    """How many of the outputs the draft lets proceed unattended were wrong, expected from what people
    judged (the accountability estimates, docs/accountability.md): per confidence band, the weighted
    error rate among the judged decisions the draft proceeds (holds weigh 1, audit samples 1/p),
    post-stratified by the draft's proceeds per band, with its 95% interval, times those proceeds.
    None when nobody judged any of them; the estimate is null when a band the draft lets through has
    no judgement (those bands are listed)."""
    if not judged:
        return None
    total = sum(proceeds.values())
    rate = estimates.stratified_rate(dict(proceeds), judged)
    expected = estimates.expected_wrong(total, rate)
    return {
        "proceeds": total,
        **expected.as_dict(),
        "rate": rate.as_dict(),
        "judged": sum(len(observations) for observations in judged.values()),
        "bands_without_judgements": [
            {"lower": lower, "upper": upper, "proceeds": proceeds[index]}
            for index in sorted(proceeds)
            if not judged.get(index)
            for lower, upper in [estimates.band_bounds(index, band_width)]
        ],
    }


def expected_errors_text(expected: dict | None) -> str:
    """The expected unattended errors in words, for the command and the console page."""
    if expected is None:
        return "expected unattended errors unknown: nobody judged any output the draft lets proceed"
    if expected["estimate"] is None:
        bands = ", ".join(f"{band['lower']:g}-{band['upper']:g}" for band in expected["bands_without_judgements"])
        return (
            f"expected unattended errors unknown: nobody judged an output of band {bands} that the draft lets proceed"
        )
    return (
        f"expected unattended errors {expected['estimate']:.1f} (95% {expected['low']:.1f}-{expected['high']:.1f}) "
        f"among {expected['proceeds']} proceeds"
    )


def policy_replay(
    *,
    workflow: Workflow,
    document: object,
    window: ReplayWindow,
    sample_limit: int = 20,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> dict:
    """Replay ``document`` (a draft policy of ``workflow``) over the recorded decisions of ``window``.

    ``progress`` is called with the number replayed so far after every chunk."""
    document = replay_draft_check(workflow=workflow, document=document)
    policy = policy_build(document)
    sampling = document.get("sampling") or {}
    tally = _Tally(
        rule_codes=[rule.code for rule in policy.rules],
        sample_limit=sample_limit,
        band_width=float(sampling.get("band_width", estimates.DEFAULT_BAND_WIDTH)),
    )
    window = window.resolved(now=timezone.now())
    # A transaction of its own is read-only: PostgreSQL refuses any write the replay might attempt.
    # (Inside a caller's transaction the cursor still needs one, but its mode is the caller's.)
    read_only = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if read_only:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
        for (
            decision_id,
            current,
            confidence,
            reasons,
            output,
            input_data,
            context,
            value_at_risk,
            item_id,
            resolution,
            audit_probability,
        ) in _rows(workflow, window, chunk_size):
            evaluation = policy_evaluate(
                policy,
                output=_json(output),
                confidence=confidence,
                input_data=_json(input_data),
                context=_json(context),
                value_at_risk=float(value_at_risk) if value_at_risk is not None else None,
            )
            tally.add(
                decision_id, current, confidence, _json(reasons), item_id, resolution, audit_probability, evaluation
            )
            if progress is not None and tally.decisions % chunk_size == 0:
                progress(tally.decisions)
    answer = tally.answer(workflow=workflow, window=window, document=document)
    answer["draft_checksum"] = policy_document_checksum(document)
    return answer
