"""The capacity model's arithmetic, without an engine: Erlang C against closed forms, a published
value and an independent implementation; the edge cases; the model against the simulator."""

import math
from fractions import Fraction

import pytest

from exceptions_app.capacity import erlang
from exceptions_app.capacity.forecast import QueueInputs, headline, queue_forecast
from exceptions_app.capacity.simulation import simulate_queue


def exact_erlang_c(servers: int, offered_load: Fraction) -> Fraction:
    """The textbook formula in exact rationals: a^c/c! c/(c-a) over the sum of a^k/k! plus that."""
    head = offered_load**servers / math.factorial(servers) * Fraction(servers) / (servers - offered_load)
    return head / (sum(offered_load**k / math.factorial(k) for k in range(servers)) + head)


def log_space_erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B as (a^c/c!) / sum(a^k/k!) in logarithms: independent of the recursion, and exact enough."""
    terms = [k * math.log(offered_load) - math.lgamma(k + 1) for k in range(servers + 1)]
    top = max(terms)
    return math.exp(terms[-1] - top - math.log(sum(math.exp(term - top) for term in terms)))


@pytest.mark.parametrize("utilisation", [0.1, 0.5, 0.8, 0.95, 0.999])
def test_one_server_is_m_m_1_where_the_probability_of_waiting_is_the_utilisation(utilisation):
    assert erlang.erlang_c(1, utilisation) == pytest.approx(utilisation)
    rate = 1 / 60
    assert erlang.mean_wait(utilisation * rate, rate, 1) == pytest.approx(utilisation / (rate - utilisation * rate))


@pytest.mark.parametrize("utilisation", [0.2, 0.6, 0.9])
def test_two_servers_match_the_closed_form(utilisation):
    assert erlang.erlang_c(2, 2 * utilisation) == pytest.approx(2 * utilisation**2 / (1 + utilisation))


def test_the_published_value_for_three_servers_at_two_erlangs():
    # Kleinrock, Queueing Systems vol. 1 (M/M/3, a = 2): C = 4/9.
    assert erlang.erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert erlang.erlang_b(1, 1.0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("servers", "offered_load"),
    [
        (1, Fraction(1, 2)),
        (3, Fraction(5, 2)),
        (5, Fraction(4)),
        (10, Fraction(8)),
        (20, Fraction(19)),
        (60, Fraction(57)),
    ],
)
def test_erlang_c_matches_exact_rational_arithmetic(servers, offered_load):
    assert erlang.erlang_c(servers, float(offered_load)) == pytest.approx(
        float(exact_erlang_c(servers, offered_load)), rel=1e-9
    )


@pytest.mark.parametrize(("servers", "offered_load"), [(200, 180.0), (2000, 1950.0), (20000, 19900.0)])
def test_large_teams_stay_finite_and_match_the_log_space_formula(servers, offered_load):
    blocking = erlang.erlang_b(servers, offered_load)
    assert blocking == pytest.approx(log_space_erlang_b(servers, offered_load), rel=1e-7)
    waiting = erlang.erlang_c(servers, offered_load)
    assert 0 < waiting < 1
    assert math.isfinite(erlang.mean_wait(offered_load / 60, 1 / 60, servers))


def test_no_arrivals_means_no_wait_full_attainment_and_nobody_needed():
    assert erlang.mean_wait(0, 1 / 60, 3) == 0
    assert erlang.wait_quantile(0, 1 / 60, 0, 0.95) == 0
    assert erlang.sla_attainment(0, 1 / 60, 0, 600) == 1
    assert erlang.servers_needed(0, 1 / 60, 600, 0.95) == 0
    assert erlang.utilisation(0, 0, 0) == 0


def test_no_operators_is_unbounded_not_a_division_error():
    assert erlang.utilisation(0.1, 1 / 60, 0) == math.inf
    assert erlang.mean_wait(0.1, 1 / 60, 0) == math.inf
    assert erlang.wait_quantile(0.1, 1 / 60, 0, 0.95) == math.inf
    assert erlang.sla_attainment(0.1, 1 / 60, 0, 600) == 0
    assert erlang.erlang_c(0, 1.0) == 1


@pytest.mark.parametrize("utilisation", [1.0, 1.5, 40.0])
def test_utilisation_of_one_or_more_is_unbounded(utilisation):
    rate = 1 / 60
    arrivals = utilisation * 3 * rate
    assert erlang.utilisation(arrivals, rate, 3) == pytest.approx(utilisation)
    assert erlang.mean_wait(arrivals, rate, 3) == math.inf
    assert erlang.wait_quantile(arrivals, rate, 3, 0.95) == math.inf
    assert erlang.sla_attainment(arrivals, rate, 3, 600) == 0
    assert erlang.servers_needed(arrivals, rate, 600, 0.95) > 3 * utilisation


def test_servers_needed_is_the_fewest_that_meet_the_target():
    arrivals, rate, sla = 0.5, 1 / 60, 300
    needed = erlang.servers_needed(arrivals, rate, sla, 0.95)
    assert erlang.sla_attainment(arrivals, rate, needed, sla) >= 0.95
    assert erlang.sla_attainment(arrivals, rate, needed - 1, sla) < 0.95


def test_servers_needed_is_unbounded_when_handling_alone_breaks_the_sla():
    # Handling averages 10 minutes against a 5-minute SLA: even with nobody waiting, 61% are late.
    assert erlang.servers_needed(0.01, 1 / 600, 300, 0.95) == math.inf


@pytest.mark.parametrize(("utilisation", "arrivals"), [(0.5, 40_000), (0.8, 80_000), (0.95, 200_000)])
def test_the_model_predicts_what_the_simulator_measures_with_poisson_arrivals_and_exponential_handling(
    utilisation, arrivals
):
    servers, handling, sla = 4, 120.0, 300.0
    rate = utilisation * servers / handling
    measured = simulate_queue(
        arrival_rate=rate, mean_handling_seconds=handling, servers=servers, sla_seconds=sla, arrivals=arrivals, seed=11
    )
    predicted_wait = erlang.mean_wait(rate, 1 / handling, servers)
    assert predicted_wait == pytest.approx(measured.mean_wait_seconds, rel=0.25)
    assert abs(erlang.sla_attainment(rate, 1 / handling, servers, sla) - measured.sla_attainment) <= 0.10


def test_bursty_arrivals_and_long_tailed_handling_wait_longer_than_m_m_c_predicts():
    rate, handling, servers = 0.8 * 4 / 120, 120.0, 4
    kwargs = {"arrival_rate": rate, "mean_handling_seconds": handling, "servers": servers, "sla_seconds": 600}
    poisson = simulate_queue(**kwargs, arrivals=40_000, seed=3)
    rough = simulate_queue(**kwargs, arrivals=40_000, seed=3, arrival_dispersion=4.0, handling_variation=2.5)
    assert rough.mean_wait_seconds > 2 * poisson.mean_wait_seconds
    assert rough.sla_attainment < poisson.sla_attainment


def billing(**changes) -> QueueInputs:
    values = {
        "queue": "billing",
        "sla_seconds": 3 * 3600.0,
        "arrival_rate_per_hour": 30.0,
        "operators": 2,
        "mean_handling_seconds": 200.0,
        "handling_variation": 1.0,
        "arrival_dispersion": 1.0,
    }
    return QueueInputs(**{**values, **changes})


def test_a_forecast_says_which_model_each_figure_comes_from():
    forecast = queue_forecast(billing())
    assert forecast.model["predicted_wait_seconds"] == "erlang_c"
    assert forecast.model["drain_eta_seconds"] == "fluid"
    bursty = queue_forecast(billing(arrival_dispersion=3.0))
    assert bursty.model["sla_attainment"] == "simulation"
    assert bursty.model["operators_needed"] == "simulation"
    assert queue_forecast(billing(), operators=5).model["operators"] == "what_if"


def test_doubling_volume_beyond_capacity_is_unbounded_with_a_fluid_breach_eta():
    # 2 operators x 18 per hour = 36 per hour; 60 per hour arrive at 2x.
    forecast = queue_forecast(billing(backlog=10), scale=2)
    assert forecast.arrival_rate_per_hour == pytest.approx(60)
    assert forecast.utilisation == pytest.approx(60 / 36)
    assert forecast.mean_wait_seconds == math.inf
    assert forecast.drain_eta_seconds == math.inf
    assert forecast.sla_attainment == 0
    # The backlog grows by 24 an hour; new arrivals wait longer than 3 h once it reaches 108.
    assert forecast.breach_eta_seconds == pytest.approx((3 * 36 - 10) / 24 * 3600 + 3 * 3600)
    assert forecast.operators_needed >= 4


def test_a_queue_without_operators_or_handling_data_answers_without_dividing_by_zero():
    nobody = queue_forecast(billing(operators=0, backlog=5, oldest_age_seconds=60, age_buckets=[(60, 5)]))
    assert nobody.utilisation == math.inf
    assert nobody.mean_wait_seconds == math.inf
    assert nobody.breach_eta_seconds == pytest.approx(3 * 3600 - 60)
    unmeasured = queue_forecast(billing(mean_handling_seconds=None))
    assert unmeasured.sla_attainment is None
    assert unmeasured.operators_needed is None
    assert unmeasured.model["service_rate_per_operator_per_hour"] == "no_handling_data"
    quiet = queue_forecast(billing(arrival_rate_per_hour=0, operators=0, mean_handling_seconds=None))
    assert quiet.sla_attainment == 1
    assert quiet.utilisation == 0
    assert quiet.drain_eta_seconds == 0


def test_the_drain_time_and_the_oldest_items_breach():
    forecast = queue_forecast(
        billing(backlog=20, oldest_age_seconds=3 * 3600 - 100, age_buckets=[(3600, 10), (14400, 10)])
    )
    assert forecast.drain_eta_seconds == pytest.approx(20 / (2 / 200 - 30 / 3600))
    assert forecast.breach_eta_seconds == pytest.approx(100)  # ten items ahead take 1,000 s


def test_the_headline_names_the_queue_that_breaks_first():
    forecasts = [
        queue_forecast(billing(), scale=2),
        queue_forecast(billing(queue="routing", sla_seconds=900, arrival_rate_per_hour=1, operators=3)),
    ]
    sentence = headline(forecasts, scale=2, target=0.95)
    needed = forecasts[0].operators_needed
    assert (
        sentence
        == f"At 2x volume, `billing` breaks first: SLA attainment 0% within 3 h; it needs {needed} operators, has 2."
    )
    calm = headline([queue_forecast(billing(operators=6))], scale=1, target=0.95)
    assert calm.startswith("At current volume, every queue meets 95% of its SLA")
