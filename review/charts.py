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


SQUARE = 240  # the accountability charts are square: both axes are rates


def reliability(points: list[dict], *, size: int = SQUARE) -> dict:
    """Human agreement against stated confidence per band: a dot with its 95% interval as a
    vertical bar, and the diagonal a calibrated model would lie on."""
    dots = []
    for point in points:
        if point["agreement"] is None:
            continue
        x = size * point["confidence"]
        dots.append(
            {
                "x": f"{x:.1f}",
                "y": f"{size - size * point['agreement']:.1f}",
                "y_low": f"{size - size * point['low']:.1f}",
                "y_high": f"{size - size * point['high']:.1f}",
                "label": f"{point['lower']:.2f}-{point['upper']:.2f}: {point['agreement']:.1%} agree "
                f"({point['judged']} judged, stated {point['confidence']:.2f})",
            }
        )
    return {"size": size, "dots": dots}


def tradeoff(curve: list[dict], *, target: float | None, recommended: float | None, current: float, size: int = SQUARE):
    """Review rate (x) against the unattended error it would let through (y) for every candidate
    threshold: the estimate as a line, the upper 95% bound dashed, the target as a rule."""
    known = [point for point in curve if point["error"]["estimate"] is not None and point["review_rate"] is not None]
    top = max([point["error"]["high"] for point in known] + [target or 0.0, 0.01])

    def y(value: float) -> str:
        return f"{size - size * value / top:.1f}"

    def coordinates(key: str) -> str:
        return " ".join(f"{size * point['review_rate']:.1f},{y(point['error'][key])}" for point in known)

    marks = [
        {
            "x": f"{size * point['review_rate']:.1f}",
            "y": y(point["error"]["estimate"]),
            "kind": "recommended" if point["threshold"] == recommended else "current",
            "label": f"auto_approve {point['threshold']:.2f}: review {point['review_rate']:.1%}, "
            f"unattended error {point['error']['estimate']:.2%} (up to {point['error']['high']:.2%})",
        }
        for point in known
        if point["threshold"] in (recommended, current)
    ]
    return {
        "size": size,
        "estimate": coordinates("estimate"),
        "high": coordinates("high"),
        "target_y": y(target) if target is not None else None,
        "top": top,
        "marks": marks,
    }
