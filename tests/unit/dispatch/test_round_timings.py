"""The dispatcher's round timings: a cumulative histogram in a few integers."""

from __future__ import annotations

import math

from missions.dispatcher import ROUND_BUCKETS_S, RoundTimings


def test_rounds_fall_in_the_first_bucket_that_holds_them() -> None:
    t = RoundTimings()
    assert t.cumulative() == [(b, 0) for b in (*ROUND_BUCKETS_S, math.inf)]
    for seconds in (0.001, 0.005, 0.3, 2.0, 120.0):  # a bound itself counts as "at most"
        t.observe(seconds)
    cumulative = dict(t.cumulative())
    assert cumulative[0.005] == 2
    assert cumulative[0.25] == 2
    assert cumulative[0.5] == 3
    assert cumulative[2.0] == 4
    assert cumulative[60.0] == 4
    assert cumulative[math.inf] == t.count == 5
    assert math.isclose(t.total_s, 122.306)
    assert t.last_s == 120.0
