"""How far independent judgements agree: percent agreement, Fleiss' kappa (several judges per item)
and Cohen's kappa (one judge against the final decision), each with an interval so a small sample
is not over-read. Pure arithmetic: no database, tested against textbook examples.

Kappa is agreement beyond what chance alone would give: 1 is perfect, 0 is chance, below 0 is worse
than chance. Intervals are percentile bootstraps over items (a fixed seed, so a figure does not move
between two reads of the same data), or, for a proportion, Wilson's score interval.
"""

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence

Z95 = 1.959963984540054
RESAMPLES = 1000
# Resampling costs rows x resamples; past this many draws, fewer resamples (never under 200) keep a page fast.
MAX_DRAWS = 400_000


def pairwise_agreement(item: Counter) -> float | None:
    """The share of pairs of an item's judges that agree (None for an item with fewer than two)."""
    judges = sum(item.values())
    if judges < 2:
        return None
    return sum(count * (count - 1) for count in item.values()) / (judges * (judges - 1))


def percent_agreement(items: Sequence[Counter]) -> float | None:
    """Mean pairwise agreement over items with two or more judgements (Fleiss' P-bar)."""
    shares = [share for share in map(pairwise_agreement, items) if share is not None]
    return sum(shares) / len(shares) if shares else None


def fleiss_kappa(items: Sequence[Counter]) -> float | None:
    """Fleiss' kappa over items, each a Counter of category -> number of judges who chose it
    (Fleiss 1971; items may have different numbers of judges, each counted by its own pairs).
    None when there is nothing to measure, or when every judgement falls in one category
    (chance agreement is then 1 and kappa is undefined)."""
    rated = [item for item in items if sum(item.values()) >= 2]
    if not rated:
        return None
    observed = percent_agreement(rated)
    totals: Counter = Counter()
    for item in rated:
        totals.update(item)
    judgements = sum(totals.values())
    chance = sum((count / judgements) ** 2 for count in totals.values())
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa between two raters over (first, second) category pairs; None when undefined."""
    if not pairs:
        return None
    count = len(pairs)
    observed = sum(first == second for first, second in pairs) / count
    firsts, seconds = Counter(first for first, _ in pairs), Counter(second for _, second in pairs)
    chance = sum(firsts[category] * seconds[category] for category in firsts) / count**2
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    if trials == 0:
        return None
    share = successes / trials
    denominator = 1 + z**2 / trials
    centre = (share + z**2 / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z**2 / (4 * trials**2)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_interval(
    rows: Sequence, statistic: Callable[[Sequence], float | None], *, resamples: int | None = None, seed: int = 0
) -> tuple[float, float] | None:
    """A 95% percentile bootstrap interval of ``statistic`` over ``rows`` resampled with replacement
    (resamples where it is undefined are left out). None with fewer than two rows."""
    if len(rows) < 2:
        return None
    if resamples is None:
        resamples = max(200, min(RESAMPLES, MAX_DRAWS // len(rows)))
    chance = random.Random(seed)  # noqa: S311 - resampling, not secrets
    values = sorted(
        value
        for value in (statistic([chance.choice(rows) for _ in rows]) for _ in range(resamples))
        if value is not None
    )
    if len(values) < resamples // 2:
        return None
    low, high = values[int(0.025 * (len(values) - 1))], values[math.ceil(0.975 * (len(values) - 1))]
    return (low, high)
