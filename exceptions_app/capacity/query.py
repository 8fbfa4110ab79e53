"""The what-if parameters, parsed once for the API and the dashboard panel:
``scale`` (arrivals times k) and ``operators`` (``queue:n,...``)."""

import math

from rest_framework import serializers as drf

from exceptions_app.models import Queue

MAX_SCALE = 100.0
MAX_OPERATORS = 10_000
MAX_OPERATORS_TEXT = 2000


class CapacityQuery(drf.Serializer):
    scale = drf.FloatField(
        required=False, default=1.0, min_value=0.0, max_value=MAX_SCALE, help_text="Arrivals times this (0 to 100)."
    )
    operators = drf.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=MAX_OPERATORS_TEXT,
        help_text="Operators per queue for the what-if: queue:n pairs, comma-separated (billing:5,routing:2).",
    )

    def validate_scale(self, value: float) -> float:
        if not math.isfinite(value):
            raise drf.ValidationError("must be a finite number")
        return value

    def validate_operators(self, value: str) -> dict[str, int]:
        """``billing:5,routing:2`` -> {"billing": 5, "routing": 2}; every queue must exist."""
        chosen: dict[str, int] = {}
        for pair in filter(None, (part.strip() for part in value.split(","))):
            name, separator, count = pair.partition(":")
            name, count = name.strip(), count.strip()
            if not separator or not name:
                raise drf.ValidationError(f"{pair!r} is not queue:n")
            if not count.isdigit() or len(count) > 6 or int(count) > MAX_OPERATORS:
                raise drf.ValidationError(
                    f"{name}: the number of operators must be a whole number 0 to {MAX_OPERATORS}"
                )
            if name in chosen:
                raise drf.ValidationError(f"{name} is given twice")
            chosen[name] = int(count)
        unknown = sorted(set(chosen) - set(Queue.objects.filter(name__in=list(chosen)).values_list("name", flat=True)))
        if unknown:
            raise drf.ValidationError(f"no queue named {', '.join(unknown)}")
        return chosen
