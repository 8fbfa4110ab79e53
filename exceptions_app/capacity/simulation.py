"""A discrete-event simulation of one queue, for where the M/M/c assumptions fail: bursty arrivals
(batches of geometric size, so counts are over-dispersed) and long-tailed handling (lognormal with
the measured mean and coefficient of variation). Pure Python, seeded, so the same inputs give the
same answer on every request.

Operators take items first come, first served; the SLA clock runs from arrival to resolution, as
the product's does. The first tenth of the arrivals warm the queue up and are not counted."""

import functools
import heapq
import math
import random
from dataclasses import dataclass

WARM_UP_FRACTION = 0.1


@dataclass(frozen=True)
class SimulationResult:
    mean_wait_seconds: float
    p95_wait_seconds: float
    sla_attainment: float
    arrivals: int


def _handling_sampler(rng: random.Random, mean_seconds: float, variation: float):
    """Exponential when the coefficient of variation is 1 (M/M/c), lognormal otherwise."""
    if abs(variation - 1.0) < 1e-9:
        return lambda: rng.expovariate(1.0 / mean_seconds)
    if variation <= 0:
        return lambda: mean_seconds
    sigma = math.sqrt(math.log(1.0 + variation * variation))
    location = math.log(mean_seconds) - sigma * sigma / 2.0
    gauss, exp = rng.gauss, math.exp  # gauss (Box-Muller) is twice as fast as lognormvariate's sampler
    return lambda: exp(location + sigma * gauss())


def _arrival_times(rng: random.Random, rate: float, dispersion: float, count: int) -> list[float]:
    """``count`` arrival times at ``rate`` per second. A dispersion (variance / mean of counts) of 1
    is a Poisson stream; above 1, batches of geometric size with mean (D + 1) / 2 arrive as Poisson,
    which keeps the rate and gives counts of that dispersion."""
    batch_mean = max(1.0, (dispersion + 1.0) / 2.0)
    continue_probability = 1.0 - 1.0 / batch_mean
    times: list[float] = []
    clock = 0.0
    while len(times) < count:
        clock += rng.expovariate(rate / batch_mean)
        times.append(clock)
        while len(times) < count and rng.random() < continue_probability:
            times.append(clock)
    return times


@functools.lru_cache(maxsize=256)  # inputs change once per snapshot tick; the answer is seeded
def simulate_queue(
    *,
    arrival_rate: float,
    mean_handling_seconds: float,
    servers: int,
    sla_seconds: float,
    handling_variation: float = 1.0,
    arrival_dispersion: float = 1.0,
    arrivals: int = 4000,
    seed: int = 24,
) -> SimulationResult:
    """Simulate ``arrivals`` items through ``servers`` operators. Rates are per second."""
    if arrival_rate <= 0 or arrivals <= 0:
        return SimulationResult(0.0, 0.0, 1.0, 0)
    if servers <= 0 or mean_handling_seconds <= 0:
        raise ValueError("a simulation needs operators and a handling time")
    rng = random.Random(seed)  # noqa: S311 - a model, not a secret
    handling = _handling_sampler(rng, mean_handling_seconds, handling_variation)
    times = _arrival_times(rng, arrival_rate, arrival_dispersion, arrivals)
    free_at = [0.0] * servers  # a heap of the moments each operator is next free
    skip = int(arrivals * WARM_UP_FRACTION)
    waits: list[float] = []
    on_time = 0
    for index, arrived in enumerate(times):
        start = max(arrived, heapq.heappop(free_at))
        service = handling()
        heapq.heappush(free_at, start + service)
        if index >= skip:
            wait = start - arrived
            waits.append(wait)
            on_time += wait + service <= sla_seconds
    waits.sort()
    position = 0.95 * (len(waits) - 1)
    lower = int(position)
    upper = min(lower + 1, len(waits) - 1)
    p95 = waits[lower] + (waits[upper] - waits[lower]) * (position - lower)
    return SimulationResult(
        mean_wait_seconds=sum(waits) / len(waits),
        p95_wait_seconds=p95,
        sla_attainment=on_time / len(waits),
        arrivals=len(waits),
    )
