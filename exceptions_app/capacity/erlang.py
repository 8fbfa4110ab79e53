"""The M/M/c queue (Erlang C), pure arithmetic on rates in events per second.

Numerically stable for large ``c``: Erlang B by its recursion B(k) = a B(k-1) / (k + a B(k-1)),
which stays in [0, 1], instead of a^c / c! (which overflows a float near c = 170). Every function
answers ``math.inf`` (or a probability of 0 or 1) where the queue is unstable, has no operators or
has no arrivals, never a division error.
"""

import math

UNBOUNDED = math.inf


def erlang_b(servers: int, offered_load: float) -> float:
    """Blocking probability of M/M/c/c with ``offered_load`` = lambda / mu Erlangs."""
    if servers < 0 or offered_load < 0:
        raise ValueError("servers and offered load must not be negative")
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return blocking


def _erlang_c_from_b(servers: int, offered_load: float, blocking: float) -> float:
    utilisation = offered_load / servers
    return blocking / (1.0 - utilisation * (1.0 - blocking))


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits (all ``servers`` busy); 1 when the queue is unstable."""
    if offered_load <= 0:
        return 0.0
    if servers <= 0 or offered_load >= servers:
        return 1.0
    return _erlang_c_from_b(servers, offered_load, erlang_b(servers, offered_load))


def utilisation(arrival_rate: float, service_rate: float, servers: int) -> float:
    """lambda / (c mu); inf when arrivals meet no capacity, 0 with no arrivals."""
    if arrival_rate <= 0:
        return 0.0
    if servers <= 0 or service_rate <= 0:
        return UNBOUNDED
    return arrival_rate / (servers * service_rate)


def _stable(arrival_rate: float, service_rate: float, servers: int) -> bool:
    return servers > 0 and service_rate > 0 and arrival_rate < servers * service_rate


def mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time in queue before an operator picks the item up, in seconds."""
    if arrival_rate <= 0:
        return 0.0
    if not _stable(arrival_rate, service_rate, servers):
        return UNBOUNDED
    waiting = erlang_c(servers, arrival_rate / service_rate)
    return waiting / (servers * service_rate - arrival_rate)


def wait_quantile(arrival_rate: float, service_rate: float, servers: int, fraction: float) -> float:
    """The ``fraction`` quantile of the wait: P(W > t) = C exp(-(c mu - lambda) t)."""
    if arrival_rate <= 0:
        return 0.0
    if not _stable(arrival_rate, service_rate, servers):
        return UNBOUNDED
    waiting = erlang_c(servers, arrival_rate / service_rate)
    tail = 1.0 - fraction
    if waiting <= tail:
        return 0.0
    return math.log(waiting / tail) / (servers * service_rate - arrival_rate)


def _sojourn_tail_given_wait(drain_rate: float, service_rate: float, seconds: float) -> float:
    """P(E1 + E2 > t) for independent exponentials of rates ``drain_rate`` and ``service_rate``."""
    if abs(drain_rate - service_rate) <= 1e-9 * service_rate:
        return (1.0 + service_rate * seconds) * math.exp(-service_rate * seconds)
    return (drain_rate * math.exp(-service_rate * seconds) - service_rate * math.exp(-drain_rate * seconds)) / (
        drain_rate - service_rate
    )


def sla_attainment(arrival_rate: float, service_rate: float, servers: int, sla_seconds: float) -> float:
    """P(wait + handling <= SLA): the SLA clock runs from queued to resolved.

    With probability 1 - C the item waits 0 and only the handling time counts; otherwise the wait is
    exponential with rate c mu - lambda, and the sum of two exponentials has a closed-form tail."""
    if arrival_rate <= 0:
        return 1.0
    if not _stable(arrival_rate, service_rate, servers):
        return 0.0
    waiting = erlang_c(servers, arrival_rate / service_rate)
    drain_rate = servers * service_rate - arrival_rate
    late = (1.0 - waiting) * math.exp(-service_rate * sla_seconds) + waiting * _sojourn_tail_given_wait(
        drain_rate, service_rate, sla_seconds
    )
    return min(1.0, max(0.0, 1.0 - late))


def servers_needed(
    arrival_rate: float, service_rate: float, sla_seconds: float, target: float, limit: int = 100_000
) -> int | float:
    """The fewest operators whose SLA attainment reaches ``target``; inf when no staffing can (the
    handling time alone breaks the SLA too often) or it would take more than ``limit``.

    One pass of the Erlang B recursion: each step reuses B(k-1), so the search costs O(answer)."""
    if arrival_rate <= 0:
        return 0
    if service_rate <= 0 or 1.0 - math.exp(-service_rate * sla_seconds) < target:
        return UNBOUNDED
    offered_load = arrival_rate / service_rate
    blocking = 1.0
    for servers in range(1, limit + 1):
        blocking = offered_load * blocking / (servers + offered_load * blocking)
        if offered_load >= servers:
            continue
        waiting = _erlang_c_from_b(servers, offered_load, blocking)
        drain_rate = servers * service_rate - arrival_rate
        late = (1.0 - waiting) * math.exp(-service_rate * sla_seconds) + waiting * _sojourn_tail_given_wait(
            drain_rate, service_rate, sla_seconds
        )
        if 1.0 - late >= target:
            return servers
    return UNBOUNDED
