from django import template

from exceptions_app import rules

register = template.Library()


@register.filter
def is_supervisor(user) -> bool:
    return rules.person_is_supervisor(user)


@register.filter
def duration(seconds) -> str:
    """1h 05m, 4m 10s, 12s; negative durations read as 'overdue'."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    seconds = abs(int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


@register.filter
def percent(rate) -> str:
    """A rate in [0, 1] as a percentage with two decimals (small error rates matter); '—' when unknown."""
    if rate is None or rate == "":
        return "—"
    return f"{float(rate) * 100:.2f}%"
