"""Outcome accountability: how often the AI is wrong when nobody looks. ``estimates`` and
``breaker`` are pure statistics (no Django), unit-tested without engines; services use them."""
