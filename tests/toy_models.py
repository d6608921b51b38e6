"""Tiny models with answers we can predict, written the way real users' files are.

Each model's decision is a fixed rule on the pixels (brightness, colour), so a test
knows the right label without trusting the code under test. The legacy writer
reproduces the exact HDF5 layout Keras 2.2.4 produced in 2018.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np


def write_card(model_path: Path, **card: object) -> None:
    model_path.with_suffix(".json").write_text(json.dumps(card))


def brightness_model(path: Path, input_shape: tuple[int | None, ...], gain: float = 20.0) -> Path:
    """Two classes, ("dark", "bright"): softmax of gain * (mean pixel - 0.5) on unit-scaled input.

    Works for any input shape: spatial dims are averaged away first.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = inputs
    if len(input_shape) == 1:
        x = layers.Reshape((input_shape[0], 1))(x)
    elif len(input_shape) == 2:
        x = layers.Reshape((*input_shape, 1))(x)
    if len(input_shape) == 3 and input_shape[0] in (1, 3) and input_shape[2] not in (1, 3):
        x = layers.Permute((2, 3, 1))(x)
    if len(input_shape) == 1:
        x = layers.GlobalAveragePooling1D()(x)
    else:
        x = layers.GlobalAveragePooling2D()(x)
    channels = x.shape[-1]
    dense = layers.Dense(2, activation="softmax")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((channels, 2), np.float32)
    kernel[:, 1] = gain / channels
    dense.set_weights([kernel, np.array([0.0, -gain / 2], np.float32)])
    model.save(path)
    return path


def red_vs_blue_sigmoid(path: Path, size: int = 150) -> Path:
    """Binary RGB classifier with one sigmoid unit: p = sigmoid(10 * (mean red - mean blue))."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(size, size, 3))
    x = layers.GlobalAveragePooling2D()(inputs)
    dense = layers.Dense(1, activation="sigmoid")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    dense.set_weights([np.array([[10.0], [0.0], [-10.0]], np.float32), np.zeros(1, np.float32)])
    model.save(path)
    return path


def keras224_mlp(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a Keras 2.2.4 Sequential MLP (784 -> 16 relu -> 10 softmax) with h5py.

    The layout is byte-for-byte what Keras 2.2.4's `model.save` wrote: the model
    config as a JSON attribute (the first Dense carrying `batch_input_shape`), weights
    under `model_weights/<layer>/<layer>/kernel:0`. Returns the weights so that tests
    can compute reference predictions with numpy.
    """
    rng = np.random.default_rng(seed)
    weights = {
        "w1": rng.normal(0, 0.08, (784, 16)).astype(np.float32),
        "b1": rng.normal(0, 0.1, 16).astype(np.float32),
        "w2": rng.normal(0, 0.5, (16, 10)).astype(np.float32),
        "b2": rng.normal(0, 0.1, 10).astype(np.float32),
    }

    def dense(name: str, units: int, activation: str, first: bool) -> dict[str, object]:
        config: dict[str, object] = {"name": name, "trainable": True}
        if first:
            config.update(batch_input_shape=[None, 784], dtype="float32")
        config.update(
            units=units, activation=activation, use_bias=True,
            kernel_initializer={"class_name": "VarianceScaling", "config": {
                "scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None}},
            bias_initializer={"class_name": "Zeros", "config": {}},
            kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
            kernel_constraint=None, bias_constraint=None)
        return {"class_name": "Dense", "config": config}

    model_config = {"class_name": "Sequential", "config": {"name": "sequential_1", "layers": [
        dense("dense_1", 16, "relu", True), dense("dense_2", 10, "softmax", False)]}}
    training_config = {"optimizer_config": {"class_name": "RMSprop", "config": {
        "lr": 0.001, "rho": 0.9, "decay": 0.0, "epsilon": 1e-07}},
        "loss": "categorical_crossentropy", "metrics": ["acc"], "sample_weight_mode": None,
        "loss_weights": None}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = np.bytes_("2.2.4")
        f.attrs["backend"] = np.bytes_("tensorflow")
        f.attrs["model_config"] = np.bytes_(json.dumps(model_config))
        f.attrs["training_config"] = np.bytes_(json.dumps(training_config))
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [np.bytes_("dense_1"), np.bytes_("dense_2")]
        group.attrs["backend"] = np.bytes_("tensorflow")
        group.attrs["keras_version"] = np.bytes_("2.2.4")
        for layer, (w, b) in {"dense_1": ("w1", "b1"), "dense_2": ("w2", "b2")}.items():
            layer_group = group.create_group(layer)
            layer_group.attrs["weight_names"] = [np.bytes_(f"{layer}/kernel:0"),
                                                 np.bytes_(f"{layer}/bias:0")]
            inner = layer_group.create_group(layer)
            inner.create_dataset("kernel:0", data=weights[w])
            inner.create_dataset("bias:0", data=weights[b])
    return weights


def keras224_reference(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """What Keras 2.2.4 computed for this MLP: relu(x W1 + b1) W2 + b2, softmax."""
    hidden = np.maximum(x @ weights["w1"] + weights["b1"], 0)
    logits = hidden @ weights["w2"] + weights["b2"]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)
