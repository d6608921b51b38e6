"""TF Serving's messages without TensorFlow, and its tensors as numpy arrays.

`tensorflow_serving.apis` takes its messages' dependencies (TensorProto and friends)
from `tensorflow.core`, and importing any module there runs `tensorflow/__init__.py`:
all of TensorFlow, some 500 MB, in a worker that serves an ONNX Runtime model. The
generated modules need only the `_pb2` files beside it (its `core` packages are empty),
so while they load the `tensorflow` package is a stand-in that knows where its files
are, nothing more; a later real `import tensorflow` (an explanation) runs as usual.
`to_array` and `to_tensor` are tf.make_ndarray and tf.make_tensor_proto for the dtypes a
classifier is sent and answers.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types
from typing import Any

import numpy as np


def _load_without_tensorflow(*names: str) -> list[types.ModuleType]:
    if "tensorflow" in sys.modules:
        return [importlib.import_module(name) for name in names]
    found = importlib.util.find_spec("tensorflow")
    assert found is not None and found.submodule_search_locations is not None
    stand_in = types.ModuleType("tensorflow")
    stand_in.__path__ = list(found.submodule_search_locations)
    sys.modules["tensorflow"] = stand_in
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        if sys.modules.get("tensorflow") is stand_in:
            del sys.modules["tensorflow"]


(get_model_status_pb2, model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc,
 tensor_pb2, types_pb2) = _load_without_tensorflow(
    "tensorflow_serving.apis.get_model_status_pb2",
    "tensorflow_serving.apis.model_service_pb2_grpc", "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.prediction_service_pb2_grpc",
    "tensorflow.core.framework.tensor_pb2", "tensorflow.core.framework.types_pb2")

_DT = types_pb2.DataType
_NUMERIC: dict[int, tuple[str, str]] = {  # dtype -> (numpy dtype, the repeated field)
    _DT.Value("DT_FLOAT"): ("<f4", "float_val"), _DT.Value("DT_DOUBLE"): ("<f8", "double_val"),
    _DT.Value("DT_HALF"): ("<f2", "half_val"), _DT.Value("DT_INT8"): ("i1", "int_val"),
    _DT.Value("DT_INT16"): ("<i2", "int_val"), _DT.Value("DT_INT32"): ("<i4", "int_val"),
    _DT.Value("DT_INT64"): ("<i8", "int64_val"), _DT.Value("DT_UINT8"): ("u1", "int_val"),
    _DT.Value("DT_UINT16"): ("<u2", "int_val"), _DT.Value("DT_BOOL"): ("?", "bool_val"),
}


def to_array(tensor: Any) -> np.ndarray:
    """A TensorProto's values: numbers as their dtype, DT_STRING as an object array of
    bytes. ValueError for a dtype a classifier is not sent, or sizes that disagree."""
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    count = math.prod(shape)
    if tensor.dtype == _DT.Value("DT_STRING"):
        values = np.array(list(tensor.string_val), dtype=object)
    elif tensor.dtype in _NUMERIC:
        dtype, field = _NUMERIC[tensor.dtype]
        if tensor.tensor_content:
            values = np.frombuffer(tensor.tensor_content, dtype)
        elif field == "half_val":  # float16 bit patterns, one per int32
            values = np.array(tensor.half_val, np.uint16).view(np.float16)
        else:
            values = np.array(getattr(tensor, field), dtype)
    else:
        raise ValueError(f"dtype {_DT.Name(tensor.dtype)} is not supported")
    if len(values) == 1 and count > 1:  # TensorFlow's shorthand: one value fills the tensor
        values = np.full(count, values[0], values.dtype)
    if len(values) != count:
        raise ValueError(f"{len(values)} values for shape {shape}")
    return values.reshape(shape)


def to_tensor(array: np.ndarray) -> Any:
    """A float32 array as a TensorProto (its bytes in tensor_content, as TensorFlow does)."""
    tensor = tensor_pb2.TensorProto(dtype=_DT.Value("DT_FLOAT"),
                                    tensor_content=array.astype("<f4").tobytes())
    tensor.tensor_shape.dim.extend(tensor.tensor_shape.Dim(size=size) for size in array.shape)
    return tensor
