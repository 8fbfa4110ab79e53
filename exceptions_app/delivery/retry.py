"""What an attempt's result means, and when to try again."""

import random
from dataclasses import dataclass
from datetime import timedelta

RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class AttemptResult:
    outcome: str  # "delivered" | "retry" | "terminal"
    status_code: int | None = None
    error: str = ""
    retry_after: float | None = None


def classify(status_code: int, retry_after_header: str | None = None) -> AttemptResult:
    """2xx delivered; 408, 429 and 5xx retry (honouring Retry-After); 410 and other 4xx are
    terminal; redirects are not followed, so 3xx is terminal too."""
    if 200 <= status_code < 300:
        return AttemptResult("delivered", status_code)
    if status_code in RETRYABLE_4XX or status_code >= 500:
        retry_after = None
        if retry_after_header and retry_after_header.strip().isdigit():
            retry_after = float(retry_after_header.strip())
        return AttemptResult("retry", status_code, f"receiver answered {status_code}", retry_after)
    reason = "receiver said the endpoint is gone" if status_code == 410 else f"receiver answered {status_code}"
    return AttemptResult("terminal", status_code, reason)


def backoff(attempt: int, *, base_seconds: float, max_seconds: float, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: between half and all of base * 2^(attempt-1), capped."""
    ceiling = min(max_seconds, base_seconds * (2 ** max(0, attempt - 1)))
    return timedelta(seconds=ceiling * (rng or random).uniform(0.5, 1.0))
