"""The benchmark's Triton peer: NVIDIA Triton's core serving the same Keras file, via PyTriton.

    .venv-tools/pytriton/bin/python bench/triton_server.py MODEL.h5 INPUT_NAME HTTP_PORT

Runs in its own venv (bench/pytriton.txt: nvidia-pytriton ships the tritonserver binary;
scripts/bootstrap.sh triton makes it), never imports h5serve, and is started by
bench/triton_peer.py. Triton parses HTTP and V2 JSON in C++ and batches dynamically; the
model runs as h5serve runs it (one traced tf.function, batch axis open), one instance per
core with one TensorFlow thread each, like h5serve's two workers. Loopback only.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import keras
import numpy as np
import tensorflow as tf
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

INSTANCES = 2  # h5serve's WORKERS on this 2-core machine
MAX_BATCH = 32  # h5serve's MAX_BATCH_SIZE


def forward_function(path: str):  # type: ignore[no-untyped-def]
    """The model's forward pass as h5serve compiles it (app/runtime/classifier.py)."""
    model = keras.saving.load_model(path, compile=False)
    shape = tuple(model.inputs[0].shape[1:])

    @tf.function(input_signature=[tf.TensorSpec((None, *shape), tf.float32)])
    def call(x):  # type: ignore[no-untyped-def]
        return model(x, training=False)

    concrete = call.get_concrete_function()
    concrete(tf.zeros((1, *shape), tf.float32))  # warm up
    return shape, int(model.outputs[0].shape[-1]), concrete


def main() -> None:
    path, input_name, http_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    shape, classes, concrete = forward_function(path)

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        rows = inputs[input_name].astype(np.float32, copy=False)
        return {"probabilities": concrete(tf.convert_to_tensor(rows)).numpy()}

    config = TritonConfig(http_address="127.0.0.1", http_port=http_port, allow_grpc=False,
                          allow_metrics=False, log_verbose=0)
    with Triton(config=config) as triton:
        triton.bind(model_name="fashion_mnist", infer_func=[infer] * INSTANCES,
                    inputs=[Tensor(name=input_name, dtype=np.float32, shape=shape)],
                    outputs=[Tensor(name="probabilities", dtype=np.float32,
                                    shape=(classes,))],
                    config=ModelConfig(max_batch_size=MAX_BATCH, batcher=DynamicBatcher()))
        print("triton peer ready", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
