"""Capacity: measured inputs per queue, an M/M/c (Erlang C) model, a discrete-event simulation for
when the M/M/c assumptions fail, and the what-if forecasts built from them.

``erlang``, ``simulation`` and ``forecast`` are pure Python (no Django), so they are unit-tested
without an engine; ``inputs`` reads the measurements from the queue snapshots."""
