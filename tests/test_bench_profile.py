"""bench/profile.py's reading of py-spy's raw output (the numbers bench/README.md quotes)."""

from __future__ import annotations

from bench.profile import aggregate

RAW = """\
thread (11);run (a.py:3);handle (b.py:10);parse (c.py:5) 6
thread (11);run (a.py:3);handle (b.py:12);log (d.py:7) 3
thread (11);run (a.py:3);walk (e.py:1);walk (e.py:2);walk (e.py:2) 2
thread (12);forward (f.py:9) 1
"""


def test_samples_are_counted_per_thread_and_per_function_once_per_sample() -> None:
    threads, functions, total = aggregate(RAW)
    assert total == 12
    assert threads == {"thread (11)": 11, "thread (12)": 1}
    assert functions["run (a.py)"] == 11, "line numbers are merged"
    assert functions["handle (b.py)"] == 9
    assert functions["walk (e.py)"] == 2, "recursion counts a sample once"
    assert functions["forward (f.py)"] == 1
