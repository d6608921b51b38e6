"""OpenVINO: the traced Keras function converted by `openvino.convert_model`, on the CPU.

Precision is pinned: at its default (bf16 where the CPU has it) OpenVINO gave
probabilities 0.02 away from Keras here. RUNTIME_PRECISION=bf16 asks for it on purpose
(gated by top-1 agreement instead). Weights are saved uncompressed (`save_model` would
store them as fp16 by default) and threads are not pinned to cores: two workers would
both pin theirs to the first ones.

The batch axis stays open, with one exception: a copy compiled for batch 1, the size a
lone request runs at. OpenVINO's CPU plugin is much faster on a static shape (MobileNetV2,
one thread: 157 against 93 images/s at batch 1, 162 against 140 at batch 8), but each
compiled shape keeps its own buffers (all ten batch sizes of a server: 1.3 GB), so only
the one that matters most for latency gets its own. The open axis keeps buffers for the
biggest batch it has run and no more for smaller ones (MobileNetV2: 242 MB after batches of
1, 2, 4 and 8, 243 after 3, 5, 6 and 7 as well), so batches are not padded: a batch of 5
padded to 8 took 55 ms instead of 35.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from app.runtime.engines import ConversionError, Engine, failure_reason, thread_budget

ARTEFACT = "model.xml"


def libraries() -> str:
    return f"openvino {_version()}"


def _version() -> str:
    """2026.4.1, not 2026.4.1-22982-e213a147257-releases/2026/4."""
    import openvino

    return openvino.__version__.split("-")[0]


@cache
def _core() -> Any:
    import openvino

    return openvino.Core()


def has_bf16() -> bool:
    """Whether this CPU runs bf16 natively (AVX-512 BF16 or AMX)."""
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def convert(traced: Any, folder: Path) -> None:
    """Write the OpenVINO IR of the traced function to folder/model.xml (+ .bin).

    `convert_model` sets the root logger to ERROR while it runs and puts it back only when
    it succeeds: after a failed conversion every later log line of the service was lost.
    The root logger's level, handlers and filters are put back here, whatever happens.
    """
    import openvino

    root = logging.getLogger()
    saved = root.level, list(root.handlers), list(root.filters)
    try:
        model = openvino.convert_model(traced.get_concrete_function())
        openvino.save_model(model, folder / ARTEFACT, compress_to_fp16=False)
    except Exception as exc:  # the frontends raise their own types
        raise ConversionError(f"openvino: {failure_reason(exc)}") from None
    finally:
        root.setLevel(saved[0])
        root.handlers[:], root.filters[:] = saved[1], saved[2]


def load(folder: Path, precision: str) -> Engine:
    """The IR compiled for the CPU, for latency, on the worker's thread budget."""
    actual = precision if precision == "f32" or has_bf16() else "f32"
    config = {"INFERENCE_PRECISION_HINT": actual, "PERFORMANCE_HINT": "LATENCY",
              "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": thread_budget(),
              "ENABLE_CPU_PINNING": False}
    try:
        model = _core().read_model(str(folder / ARTEFACT))
        if len(model.inputs) != 1:
            raise ConversionError(f"the converted graph wants {len(model.inputs)} inputs, "
                                  "not one image batch")
        single = model.clone()
        single.reshape([1, *list(model.input(0).get_partial_shape())[1:]])
        any_size, one = (_core().compile_model(m, "CPU", config) for m in (model, single))
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(f"openvino: {failure_reason(exc)}") from None
    requests, output = (any_size.create_infer_request(), one.create_infer_request()), 0

    def forward(batch: np.ndarray) -> np.ndarray:
        return requests[len(batch) == 1].infer({0: batch})[output]

    note = "" if actual == precision else f"; {precision} asked, this CPU has none"
    return Engine("openvino", f"OpenVINO {_version()} (CPU, "
                  f"{thread_budget()} threads, {actual}{note})", forward, precision=actual,
                  padded=False, artefact=folder)
