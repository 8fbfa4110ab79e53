"""Server-rendered SVG charts: plain numbers in, coordinates out, drawn by the template."""

from collections import defaultdict
from datetime import datetime, timedelta

WIDTH, HEIGHT = 320, 90


def polyline(points: list[tuple[datetime, float]], *, start: datetime, end: datetime) -> dict:
    """Coordinates of a time series scaled into the chart box, and its maximum for the label."""
    values = [value for _, value in points if value is not None]
    top = max(values, default=0) or 1
    span = (end - start).total_seconds() or 1
    coordinates = " ".join(
        f"{WIDTH * (moment - start).total_seconds() / span:.1f},{HEIGHT - HEIGHT * value / top:.1f}"
        for moment, value in points
        if value is not None
    )
    return {"points": coordinates, "max": max(values, default=0), "width": WIDTH, "height": HEIGHT}


def bars(labels: list[str], values: list[float]) -> dict:
    top = max(values, default=0) or 1
    width = WIDTH / max(len(values), 1)
    return {
        "bars": [
            {
                "x": index * width + 1,
                "width": max(width - 2, 1),
                "height": HEIGHT * value / top,
                "y": HEIGHT - HEIGHT * value / top,
                "label": label,
                "value": value,
            }
            for index, (label, value) in enumerate(zip(labels, values, strict=True))
        ],
        "width": WIDTH,
        "height": HEIGHT,
        "max": max(values, default=0),
    }


def hourly_throughput(hourly, *, now: datetime) -> dict:
    """Arrivals and completions per hour over the last 24 hours, from rows of hourly sums."""
    arrivals, completions = defaultdict(int), defaultdict(int)
    for row in hourly:
        arrivals[row["hour"]] += row["arrivals"] or 0
        completions[row["hour"]] += row["completions"] or 0
    hours = [(now - timedelta(hours=offset)).replace(minute=0, second=0, microsecond=0) for offset in range(23, -1, -1)]
    return {
        "arrivals": bars([f"{hour:%H}h" for hour in hours], [arrivals[hour] for hour in hours]),
        "completions": bars([f"{hour:%H}h" for hour in hours], [completions[hour] for hour in hours]),
    }
