"""MicroBatcher: coalescing, ordering, isolation of failures, bounded queue."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.runtime.batcher import MicroBatcher
from app.runtime.errors import Overloaded
from app.runtime.padding import bucket_sizes


class GatedModel:
    """Doubles its input; blocks each call until released, and records batch sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.entered.set()
        self.gate.wait(10)
        if (batch < 0).any():
            raise ValueError("negative input")
        self.batches.append(len(batch))
        return batch * 2


@pytest.mark.parametrize(("padded", "batches"), [(True, [1, 12]), (False, [1, 10])])
def test_requests_queued_while_busy_share_one_batch(padded: bool, batches: list[int]) -> None:
    """The queued ten run together, padded to the bucket of 12, or as ten for a runtime that
    gains nothing from padding (ONNX Runtime, Engine.padded False); the lone one at once."""
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=32, padded=padded)
    with ThreadPoolExecutor(12) as pool:
        first = pool.submit(batcher.submit, np.array([[0.0]]))
        assert model.entered.wait(5)
        rest = [pool.submit(batcher.submit, np.array([[float(i)]])) for i in range(1, 11)]
        while len(batcher._jobs) < 10:
            threading.Event().wait(0.01)
        model.gate.set()
        results = [first.result(5)] + [f.result(5) for f in rest]
    assert [r.tolist() for r in results] == [[[2.0 * i]] for i in range(11)]
    assert model.batches == batches


def test_client_batches_are_chunked_and_reassembled_in_order() -> None:
    model = GatedModel()
    model.gate.set()
    batcher = MicroBatcher(model, max_batch_size=4)
    rows = np.arange(10, dtype=np.float32).reshape(10, 1)
    np.testing.assert_array_equal(batcher.submit(rows), rows * 2)
    assert model.batches == [4, 4, 2]


def test_one_bad_request_does_not_fail_its_neighbours() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=32)
    with ThreadPoolExecutor(4) as pool:
        blocker = pool.submit(batcher.submit, np.array([[1.0]]))
        assert model.entered.wait(5)
        good = pool.submit(batcher.submit, np.array([[2.0]]))
        bad = pool.submit(batcher.submit, np.array([[-1.0]]))
        also_good = pool.submit(batcher.submit, np.array([[3.0]]))
        while len(batcher._jobs) < 3:
            threading.Event().wait(0.01)
        model.gate.set()
        assert blocker.result(5).tolist() == [[2.0]]
        assert good.result(5).tolist() == [[4.0]]
        assert also_good.result(5).tolist() == [[6.0]]
        with pytest.raises(ValueError, match="negative"):
            bad.result(5)


def test_full_queue_answers_503_at_once() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=1, max_queue=2)
    with ThreadPoolExecutor(4) as pool:
        running = pool.submit(batcher.submit, np.array([[1.0]]))
        assert model.entered.wait(5)
        queued = [pool.submit(batcher.submit, np.array([[1.0]])) for _ in range(2)]
        while len(batcher._jobs) < 2:
            threading.Event().wait(0.01)
        with pytest.raises(Overloaded) as info:
            batcher.submit(np.array([[1.0]]))
        assert (info.value.code, info.value.retry_after_s) == ("overloaded", 1)
        model.gate.set()
        assert running.result(5).tolist() == [[2.0]]
        assert all(f.result(5).tolist() == [[2.0]] for f in queued)


def test_batch_delay_waits_for_company_only_up_to_the_limit() -> None:
    model = GatedModel()
    model.gate.set()
    batcher = MicroBatcher(model, max_batch_size=8, max_delay_s=0.05)
    np.testing.assert_array_equal(batcher.submit(np.ones((1, 1))), [[2.0]])
    assert model.batches == [1]


def test_bucket_sizes_step_by_four_up_to_the_maximum() -> None:
    assert bucket_sizes(1) == (1,)
    assert bucket_sizes(3) == (1, 2, 3)
    assert bucket_sizes(32) == (1, 2, 4, 8, 12, 16, 20, 24, 28, 32)
    assert bucket_sizes(10) == (1, 2, 4, 8, 10)
    assert bucket_sizes(5, padded=False) == (1, 2, 3, 4, 5)


def test_batches_are_padded_to_a_bucket_and_the_padding_never_returned() -> None:
    seen: list[np.ndarray] = []

    def model(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.copy())
        return batch.sum(axis=(1, 2))[:, None] + 1

    observed: list[int] = []
    batcher = MicroBatcher(model, max_batch_size=22,
                           observer=lambda rows, waits, seconds: observed.append(rows))
    rows = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2) + 1
    np.testing.assert_array_equal(batcher.submit(rows), rows.sum(axis=(1, 2))[:, None] + 1)
    assert seen[0].shape == (4, 2, 2) and not seen[0][3].any(), "one zero row of padding"
    assert observed == [3], "metrics count the client's rows, not the padding"
    big = np.ones((40, 2, 2), np.float32)
    assert batcher.submit(big).shape == (40, 1)
    assert [len(b) for b in seen[1:]] == [22, 20], "40 rows: 22, then 18 padded to 20"


def test_tasks_wait_for_predictions_and_have_their_own_bounded_queue() -> None:
    """Explanations run on the model thread, after every prediction already waiting."""
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch_size=32, max_tasks=2)
    order: list[tuple[str, int]] = []

    def task(name: str) -> None:
        order.append((name, len(model.batches)))  # how many forward passes ran before

    with ThreadPoolExecutor(8) as pool:
        running = pool.submit(batcher.submit, np.array([[1.0]]))
        assert model.entered.wait(5)
        tasks = [pool.submit(batcher.run_task, task, f"task {i}") for i in range(2)]
        while len(batcher._tasks) < 2:
            threading.Event().wait(0.01)
        with pytest.raises(Overloaded) as info:
            batcher.run_task(task, "one too many")
        assert info.value.retry_after_s == 2
        later = pool.submit(batcher.submit, np.array([[3.0]]))  # queued after the tasks
        while len(batcher._jobs) < 1:
            threading.Event().wait(0.01)
        model.gate.set()
        assert later.result(5).tolist() == [[6.0]] and running.result(5).tolist() == [[2.0]]
        for task in tasks:
            task.result(5)
    assert model.batches == [1, 1] and order == [("task 0", 2), ("task 1", 2)]
    with pytest.raises(ZeroDivisionError):
        batcher.run_task(lambda: 1 / 0)
    assert batcher.alive, "a failing task fails only its caller"
