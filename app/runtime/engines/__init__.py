"""Runtimes a model can be served on, behind one small interface.

A runtime is a forward function from a float32 model-input batch to the model's raw
outputs. TensorFlow runs the Keras model itself and is the reference; ONNX Runtime and
OpenVINO run a converted copy, which serves only after it gives the same answers
(app.runtime.engines.parity) and, under RUNTIME=auto, only where it measures faster
(app.runtime.engines.selection). Conversions are cached on disk (app.runtime.engines.cache).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Forward = Callable[[np.ndarray], np.ndarray]


class ConversionError(RuntimeError):
    """A runtime cannot take this model (the converter refused it, or it failed to load)."""


@dataclass(frozen=True)
class Engine:
    """One way to run the model: its name (RUNTIME's value), what it is, its forward pass."""

    name: str
    description: str
    forward: Forward
    precision: str = "f32"
    # Batches padded to a few sizes (app.runtime.padding): TensorFlow keeps kernels and
    # buffers per shape. ONNX Runtime and OpenVINO's open batch axis keep buffers only for
    # the biggest batch they have run, and padding only costs them compute.
    padded: bool = True
    artefact: Path | None = None  # the converted model's folder (a worker loads it again)


def thread_budget() -> int:
    """The threads one worker's runtime may use: the same intra-op budget gunicorn.conf.py
    gives TensorFlow (the cores split between workers), so no runtime takes more."""
    try:
        return max(1, int(os.environ.get("TF_NUM_INTRAOP_THREADS", "")))
    except ValueError:
        return max(1, os.cpu_count() or 1)


def failure_reason(exc: BaseException) -> str:
    """A converter's exception as one log line: converters raise pages of text."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
