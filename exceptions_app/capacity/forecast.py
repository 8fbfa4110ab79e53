"""Per-queue capacity figures from measured inputs, under a what-if (arrivals scaled by k, operators
changed), and the sentence that says which queue breaks first. Pure Python (no Django).

Which model answers which figure is recorded beside it (``model``):
- ``erlang_c``: the M/M/c closed forms, used when the measurements look Poisson and exponential;
- ``simulation``: the discrete-event simulation, when arrivals are bursty (variance over mean of the
  counts per tick above 1.5) or handling times far from exponential (coefficient of variation
  outside [0.5, 1.5]), fed the measured shape. Arrivals more regular than Poisson keep Erlang C,
  which then errs on the safe side;
- ``fluid``: the backlog drained at the net rate c mu - lambda, for the drain and breach times.
Infinite answers are ``math.inf`` here; the API writes them as "unbounded"."""

import math
from dataclasses import dataclass, field

from exceptions_app.capacity import erlang
from exceptions_app.capacity.simulation import simulate_queue

HANDLING_RANGE = (0.5, 1.5)  # coefficients of variation of handling that M/M/c is trusted with
BURSTY = 1.5  # arrivals' variance over mean beyond which M/M/c is not trusted
SIMULATED_ARRIVALS = 4000
SEARCH_ARRIVALS = 2000  # per step of the staffing search: a coarser answer, at half the cost
SIMULATION_STEPS = 4  # operators the simulation may add or remove from Erlang C's staffing answer


@dataclass(frozen=True)
class QueueInputs:
    """What was measured for one queue over the window. Rates are per hour."""

    queue: str
    sla_seconds: float
    arrival_rate_per_hour: float
    operators: int
    backlog: int = 0
    oldest_age_seconds: float | None = None
    # Waiting items per age bucket: (upper bound in seconds, count), youngest first.
    age_buckets: list[tuple[float, int]] = field(default_factory=list)
    mean_handling_seconds: float | None = None
    handling_variation: float | None = None  # standard deviation / mean
    arrival_dispersion: float | None = None  # variance / mean of arrivals per snapshot tick
    arrival_source: str = "recent_window"
    service_source: str = "measured"


@dataclass
class QueueForecast:
    queue: str
    sla_seconds: float
    arrival_rate_per_hour: float
    service_rate_per_operator_per_hour: float | None
    operators: int
    utilisation: float | None
    mean_wait_seconds: float | None
    p95_wait_seconds: float | None
    sla_attainment: float | None
    breach_eta_seconds: float | None
    drain_eta_seconds: float | None
    operators_needed: float | None
    backlog: int
    model: dict[str, str]


def _m_m_c_fits(inputs: QueueInputs) -> bool:
    variation, dispersion = inputs.handling_variation, inputs.arrival_dispersion
    handling_fits = variation is None or HANDLING_RANGE[0] <= variation <= HANDLING_RANGE[1]
    return handling_fits and (dispersion is None or dispersion <= BURSTY)


def _simulated(inputs: QueueInputs, arrival_rate: float, servers: int, arrivals: int = SIMULATED_ARRIVALS):
    return simulate_queue(
        arrival_rate=arrival_rate,
        mean_handling_seconds=inputs.mean_handling_seconds,
        servers=servers,
        sla_seconds=inputs.sla_seconds,
        handling_variation=inputs.handling_variation if inputs.handling_variation is not None else 1.0,
        arrival_dispersion=inputs.arrival_dispersion if inputs.arrival_dispersion is not None else 1.0,
        arrivals=arrivals,
    )


def _simulated_need(inputs: QueueInputs, arrival_rate: float, service_rate: float, start: int, target: float):
    """Walk from Erlang C's answer to the fewest operators the simulation says meet ``target``."""
    servers = max(start, math.floor(arrival_rate / service_rate) + 1)

    def attainment(count: int) -> float:
        return _simulated(inputs, arrival_rate, count, SEARCH_ARRIVALS).sla_attainment

    if attainment(servers) < target:
        for _ in range(SIMULATION_STEPS):
            servers += 1
            if attainment(servers) >= target:
                return servers
        return servers  # still short: the last tried, a floor
    for _ in range(SIMULATION_STEPS):
        fewer = servers - 1
        if fewer * service_rate <= arrival_rate or attainment(fewer) < target:
            break
        servers = fewer
    return servers


def _backlog_breach(inputs: QueueInputs, capacity: float, service_rate: float | None) -> float | None:
    """When the first waiting item breaches, if items are served oldest first at ``capacity`` per
    second. Each bucket's items are taken as old as its upper bound (or the oldest item): early, not late."""
    if inputs.backlog <= 0:
        return None
    oldest = inputs.oldest_age_seconds or 0.0
    if oldest >= inputs.sla_seconds:
        return 0.0
    handling = 1.0 / service_rate if service_rate else 0.0
    position = 0
    for upper, count in sorted(inputs.age_buckets, key=lambda bucket: -bucket[0]):
        if count <= 0:
            continue
        age = min(upper, oldest)
        position += count
        resolved_after = position / capacity + handling if capacity > 0 else math.inf
        if age + resolved_after > inputs.sla_seconds:
            return max(0.0, inputs.sla_seconds - age)
    return None


def _arrivals_breach(inputs, arrival_rate: float, capacity: float, attainment: float | None) -> float | None:
    """When the first new arrival breaches: in an unstable queue, once the growing backlog makes the
    wait exceed the SLA (fluid); in a stable one, after the expected 1 / (lambda x miss rate)."""
    if arrival_rate <= 0:
        return None
    if capacity <= arrival_rate:
        starts = 0.0 if capacity <= 0 else max(0.0, (inputs.sla_seconds * capacity - inputs.backlog))
        starts = starts / (arrival_rate - capacity) if capacity > 0 else 0.0
        return starts + inputs.sla_seconds
    if attainment is None or attainment >= 1.0:
        return None
    return 1.0 / (arrival_rate * (1.0 - attainment)) + inputs.sla_seconds


def queue_forecast(
    inputs: QueueInputs, *, scale: float = 1.0, operators: int | None = None, target: float = 0.95
) -> QueueForecast:
    """The capacity figures of one queue with arrivals times ``scale`` and ``operators`` people (the
    measured number when None)."""
    servers = inputs.operators if operators is None else operators
    arrival_rate = inputs.arrival_rate_per_hour * scale / 3600.0
    service_rate = 1.0 / inputs.mean_handling_seconds if inputs.mean_handling_seconds else None
    queueing = "erlang_c" if _m_m_c_fits(inputs) else "simulation"
    model = {
        "arrival_rate_per_hour": inputs.arrival_source,
        "service_rate_per_operator_per_hour": inputs.service_source if service_rate else "no_handling_data",
        "operators": "measured" if operators is None else "what_if",
        "utilisation": "erlang_c",
        "predicted_wait_seconds": queueing,
        "sla_attainment": queueing,
        "breach_eta_seconds": f"fluid+{queueing}",
        "drain_eta_seconds": "fluid",
        "operators_needed": queueing,
    }
    capacity = servers * service_rate if service_rate else 0.0
    forecast = QueueForecast(
        queue=inputs.queue,
        sla_seconds=inputs.sla_seconds,
        arrival_rate_per_hour=arrival_rate * 3600.0,
        service_rate_per_operator_per_hour=service_rate * 3600.0 if service_rate else None,
        operators=servers,
        utilisation=None,
        mean_wait_seconds=None,
        p95_wait_seconds=None,
        sla_attainment=None,
        breach_eta_seconds=None,
        drain_eta_seconds=None,
        operators_needed=None,
        backlog=inputs.backlog,
        model=model,
    )
    known = service_rate is not None or servers == 0 or arrival_rate == 0
    if known:
        forecast.utilisation = erlang.utilisation(arrival_rate, service_rate or 0.0, servers)
        stable = arrival_rate == 0 or (service_rate is not None and capacity > arrival_rate)
        if not stable:
            forecast.mean_wait_seconds = forecast.p95_wait_seconds = math.inf
            forecast.sla_attainment = 0.0
        elif queueing == "simulation" and arrival_rate > 0:
            result = _simulated(inputs, arrival_rate, servers)
            forecast.mean_wait_seconds, forecast.p95_wait_seconds = result.mean_wait_seconds, result.p95_wait_seconds
            forecast.sla_attainment = result.sla_attainment
        else:
            forecast.mean_wait_seconds = erlang.mean_wait(arrival_rate, service_rate or 0.0, servers)
            forecast.p95_wait_seconds = erlang.wait_quantile(arrival_rate, service_rate or 0.0, servers, 0.95)
            forecast.sla_attainment = erlang.sla_attainment(
                arrival_rate, service_rate or 0.0, servers, inputs.sla_seconds
            )
        if inputs.backlog <= 0:
            forecast.drain_eta_seconds = 0.0 if stable else math.inf
        else:
            forecast.drain_eta_seconds = (
                inputs.backlog / (capacity - arrival_rate) if capacity > arrival_rate else math.inf
            )
        breaches = [
            eta
            for eta in (
                _backlog_breach(inputs, capacity, service_rate),
                _arrivals_breach(inputs, arrival_rate, capacity, forecast.sla_attainment),
            )
            if eta is not None
        ]
        forecast.breach_eta_seconds = min(breaches) if breaches else None
    if service_rate is not None:
        needed = erlang.servers_needed(arrival_rate, service_rate, inputs.sla_seconds, target)
        if queueing == "simulation" and arrival_rate > 0 and needed != math.inf:
            needed = _simulated_need(inputs, arrival_rate, service_rate, int(needed), target)
        forecast.operators_needed = max(needed, 1) if inputs.backlog > 0 else needed
    return forecast


def duration_words(seconds: float) -> str:
    """3 h, 30 min, 1 d, 45 s: the SLA as a supervisor says it."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            value = seconds / size
            return f"{value:.0f} {unit}" if value == round(value) or value >= 10 else f"{value:.1f} {unit}"
    return f"{seconds:.0f} s"


def scale_words(scale: float) -> str:
    return "current volume" if scale == 1 else f"{scale:g}x volume"


def breaking_first(forecasts: list[QueueForecast], target: float) -> QueueForecast | None:
    """The queue below ``target`` attainment that is worst, then soonest to breach; None if all meet it."""
    short = [f for f in forecasts if f.sla_attainment is not None and f.sla_attainment < target]
    if not short:
        return None
    return min(
        short,
        key=lambda f: (f.sla_attainment, f.breach_eta_seconds if f.breach_eta_seconds is not None else math.inf),
    )


def headline(forecasts: list[QueueForecast], *, scale: float, target: float) -> str:
    """At 2x volume, `billing` breaks first: SLA attainment 41% within 3 h; it needs 5 operators, has 2."""
    at = f"At {scale_words(scale)}"
    known = [f for f in forecasts if f.sla_attainment is not None]
    if not known:
        return f"{at}: not enough measurements yet (no handling times in the window) to say which queue breaks first."
    worst = breaking_first(known, target)
    if worst is None:
        tightest = min(known, key=lambda f: f.sla_attainment)
        return (
            f"{at}, every queue meets {target:.0%} of its SLA; the tightest is `{tightest.queue}` "
            f"at {tightest.sla_attainment:.0%} within {duration_words(tightest.sla_seconds)}."
        )
    if worst.operators_needed is None:
        needs = "its handling time is unknown"
    elif worst.operators_needed == math.inf:
        needs = "no number of operators meets the target, the handling time alone is too long"
    else:
        needs = f"it needs {worst.operators_needed:.0f} operators, has {worst.operators}"
    return (
        f"{at}, `{worst.queue}` breaks first: SLA attainment {worst.sla_attainment:.0%} "
        f"within {duration_words(worst.sla_seconds)}; {needs}."
    )
