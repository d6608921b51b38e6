"""The biggest batch worth forming (app.runtime.engines.timing.batch_limit), on stand-in
models whose cost per call is known: sleeping is timed as faithfully as computing."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from app.runtime.engines.timing import BATCHED, batch_limit


def costing(per_call: float, per_image: float) -> Callable[[np.ndarray], np.ndarray]:
    def forward(batch: np.ndarray) -> np.ndarray:
        time.sleep(per_call + per_image * len(batch))
        return np.zeros((len(batch), 2), np.float32)
    return forward


def test_a_model_that_gains_nothing_from_bigger_batches_stops_at_the_busy_size() -> None:
    limit, rates = batch_limit(costing(0.0, 0.002), (4,), 32, 0.2)
    assert limit == BATCHED
    assert set(rates) == {BATCHED, 2 * BATCHED}  # the doubled batch was timed, then refused


def test_a_model_whose_calls_cost_more_than_its_images_takes_the_largest_batch() -> None:
    limit, rates = batch_limit(costing(0.01, 0.0001), (4,), 32, 0.5)
    assert limit == 32
    assert rates[32] > rates[16] > rates[8]


@pytest.mark.parametrize("max_batch", [1, 4, BATCHED])
def test_nothing_is_timed_when_the_setting_allows_no_bigger_batch(max_batch: int) -> None:
    calls: list[int] = []

    def forward(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return batch

    assert batch_limit(forward, (4,), max_batch, 0.05) == (max_batch, {})
    assert calls == []


def test_a_setting_between_the_doublings_is_timed_itself() -> None:
    limit, rates = batch_limit(costing(0.01, 0.0001), (4,), 12, 0.5)
    assert limit == 12 and set(rates) == {BATCHED, 12}


def test_a_model_too_slow_to_time_keeps_the_busy_size_untimed() -> None:
    """Two calls of 8 images would not fit the time allowed: one image is timed, no more
    (a 768 px test model took a minute to prepare before, and its server timed out)."""
    calls: list[int] = []

    def forward(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        time.sleep(0.02 * len(batch))
        return batch

    assert batch_limit(forward, (4,), 32, 0.2) == (BATCHED, {})
    assert calls == [1]


def test_a_doubling_too_slow_to_time_is_not_tried() -> None:
    """Batch 8 fits the time allowed, twice 16 would not: the limit stays 8."""
    limit, rates = batch_limit(costing(0.0, 0.01), (4,), 32, 0.2)
    assert (limit, set(rates)) == (BATCHED, {BATCHED})
