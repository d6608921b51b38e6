"""ONNX Runtime: the traced Keras function converted by tf2onnx, run on the CPU provider.

tf2onnx converts the same concrete function TensorFlow runs (opset 17, the one measured
exact here); Keras 3's own `export(format="onnx")` goes through tf2onnx too. Some graphs
do not convert (EfficientNet's Normalization constants become graph inputs, a Lambda the
converter has no handler for): the session's inputs are checked, and such a model stays
on another runtime with the converter's reason logged once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from app.runtime.engines import ConversionError, Engine, failure_reason, thread_budget

OPSET = 17
ARTEFACT = "model.onnx"
# ONNX Runtime's Linux builds carry 1DS telemetry, on by default: a device id and an event
# store under ~/.cache/Microsoft, and uploads. Off before ONNX Runtime is first imported
# (the variable is read once, when its environment is created): a server sends nothing.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def libraries() -> str:
    import onnx
    import onnxruntime
    import tf2onnx

    return f"onnxruntime {onnxruntime.__version__}, tf2onnx {tf2onnx.__version__}, " \
        f"onnx {onnx.__version__}, opset {OPSET}"


def convert(traced: Any, folder: Path) -> None:
    """Write the ONNX graph of the traced function to folder/model.onnx."""
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)  # the failure is said once, by us
    try:
        proto, _ = tf2onnx.convert.from_function(traced, traced.input_signature, opset=OPSET)
    except Exception as exc:  # the converter raises anything: ValueError, KeyError, ...
        raise ConversionError(f"tf2onnx: {type(exc).__name__}: {failure_reason(exc)}") from None
    (folder / ARTEFACT).write_bytes(proto.SerializeToString())


def load(folder: Path, precision: str = "f32") -> Engine:
    """An inference session on the worker's thread budget, spinning off: idle pool
    threads would otherwise burn the cores the hub and the decoder need. Always f32: the
    CPU provider has no bf16 kernels for these models."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = thread_budget()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(folder / ARTEFACT), options,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception types
        raise ConversionError(f"onnxruntime: {failure_reason(exc)}") from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ConversionError(f"the converted graph wants {len(inputs)} inputs "
                              f"({', '.join(i.name for i in inputs)}), not one image batch")
    input_name, output_name = inputs[0].name, session.get_outputs()[0].name
    run = session.run

    def forward(batch: np.ndarray) -> np.ndarray:
        return run([output_name], {input_name: batch})[0]

    note = "" if precision == "f32" else f"; {precision} asked, runs f32"
    return Engine("onnxruntime", f"ONNX Runtime {ort.__version__} (CPUExecutionProvider, "
                  f"{options.intra_op_num_threads} threads, f32{note})", forward,
                  padded=False, artefact=folder)
