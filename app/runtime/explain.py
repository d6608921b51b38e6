"""Why the model answered: a heatmap over the input for one label, from any Keras model.

CNNs get Grad-CAM on their last convolutional layer (found by walking the layers, nested
models included), in its element-wise form (HiResCAM: gradient times activation at each
location, summed over channels). For a global-average-pooling head that is exactly
Grad-CAM; for a Flatten + Dense head it stays faithful, where plain Grad-CAM spreads the
channel weights over locations the answer never looked at. Models without convolutions get
gradient x input saliency, averaged over SmoothGrad's noisy copies.

The score is the label's logit: the output layer's softmax or sigmoid is bypassed while
the graph is traced, since a saturated probability has no gradient left. The layer is
watched by patching its `call` for that one trace; the compiled graph is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.runtime.offload import real_lock
from app.runtime.spec import ImageSpec

_CONV_LAYERS = ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")
_SQUASHING = ("softmax", "sigmoid")
SMOOTHGRAD_NOISE = 0.15  # of the input's value range (Smilkov et al. 2017)


@dataclass(frozen=True)
class Explanation:
    """A heatmap (H, W) in 0-1 over the model's input image, and how it was made."""

    heatmap: np.ndarray
    index: int  # the label explained
    method: str  # "grad-cam" | "saliency"
    layer: str | None  # the convolutional layer Grad-CAM used
    samples: int  # forward and backward passes per image


def _walk(layer: Any) -> Iterator[Any]:
    """Every layer in order, the layers of nested models before the model itself."""
    for sub in getattr(layer, "layers", ()):
        yield from _walk(sub)
        yield sub


def last_conv_layer(model: Any) -> Any | None:
    """The last 2-D convolution of the model, also inside nested models."""
    convs = [layer for layer in _walk(model) if type(layer).__name__ in _CONV_LAYERS
             and len(getattr(layer, "kernel_size", ())) == 2]
    return convs[-1] if convs else None


def _output_layer(model: Any) -> Any:
    """The layer that computes the model's output (inside a nested model if it ends one)."""
    while getattr(model, "layers", None):
        model = model.layers[-1]
    return model


@contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    """Set an attribute for one trace, then put the original back."""
    had_own = name in vars(obj)
    original = getattr(obj, name)
    object.__setattr__(obj, name, value)
    try:
        yield
    finally:
        if had_own:
            object.__setattr__(obj, name, original)
        else:
            object.__delattr__(obj, name)


def _logits(stack: ExitStack, model: Any) -> None:
    """Bypass the output layer's softmax/sigmoid (Dense activation or Activation layer)."""
    layer = _output_layer(model)
    if getattr(getattr(layer, "activation", None), "__name__", "") in _SQUASHING:
        stack.enter_context(_patched(layer, "activation", lambda x: x))
    elif type(layer).__name__ == "Softmax":
        stack.enter_context(_patched(layer, "call", lambda x, *a, **k: x))


class Explainer:
    """Heatmaps for one loaded model; `explain` runs on the model thread (the batcher's)."""

    def __init__(self, model: Any, spec: ImageSpec, binary: bool, smoothgrad: int) -> None:
        self.model = model
        self.spec = spec
        self.binary = binary  # one sigmoid unit: label 1 is its logit, label 0 minus it
        self.layer = last_conv_layer(model)
        self.method = "grad-cam" if self.layer is not None else "saliency"
        self.samples = 1 if self.layer is not None else max(1, smoothgrad)
        self._graph: Any = None
        self._lock = real_lock()  # taken in real threads only

    @property
    def prepared(self) -> bool:
        return self._graph is not None

    def prepare(self) -> None:
        """Trace the graph (about 1 s for the bundled model). It only builds a graph, so it
        may run beside the model thread's forward passes, and should: not in their way."""
        with self._lock:
            if self._graph is None:
                self._graph = self._trace()

    def explain(self, batch: np.ndarray, labels: np.ndarray) -> list[Explanation]:
        """Model-input batch (N, ...) and a label index per row -> one Explanation each."""
        self.prepare()
        maps = self._graph(batch.astype(np.float32), labels.astype(np.int32)).numpy()
        name = None if self.layer is None else self.layer.name
        return [Explanation(_normalised(m), int(i), self.method, name, self.samples)
                for m, i in zip(maps, labels, strict=True)]

    def _score(self, outputs: Any, labels: Any) -> Any:
        import tensorflow as tf

        if self.binary:
            return outputs[:, 0] * tf.cast(2 * labels - 1, outputs.dtype)
        return tf.gather(outputs, labels, axis=1, batch_dims=1)

    def _trace(self) -> Any:
        """The compiled heatmap function (N, *model_shape), (N,) -> (N, H, W)."""
        import tensorflow as tf

        spec = self.spec
        signature = [tf.TensorSpec((None, *spec.model_shape), tf.float32),
                     tf.TensorSpec((None,), tf.int32)]
        seen: dict[str, Any] = {}

        def watched(*args: Any, **kwargs: Any) -> Any:
            seen["activation"] = original(*args, **kwargs)
            return seen["activation"]

        original = self.layer.call if self.layer is not None else None

        @tf.function(input_signature=signature)
        def heatmaps(x: Any, labels: Any) -> Any:
            with ExitStack() as stack:
                _logits(stack, self.model)
                if self.layer is not None:
                    stack.enter_context(_patched(self.layer, "call", watched))
                    return self._grad_cam(x, labels, seen)
                return self._saliency(x, labels)

        return heatmaps.get_concrete_function()

    def _grad_cam(self, x: Any, labels: Any, seen: dict[str, Any]) -> Any:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            score = self._score(self.model(x, training=False), labels)
        activation = seen["activation"]
        grads = tape.gradient(score, activation)
        axis = 1 if getattr(self.layer, "data_format", "") == "channels_first" else -1
        cam = tf.nn.relu(tf.reduce_sum(grads * activation, axis=axis))[..., None]
        return tf.image.resize(cam, (self.spec.height, self.spec.width))[..., 0]

    def _saliency(self, x: Any, labels: Any) -> Any:
        import tensorflow as tf

        n, samples = tf.shape(x)[0], self.samples
        spread = SMOOTHGRAD_NOISE * (tf.reduce_max(x) - tf.reduce_min(x))
        noisy = tf.repeat(x, samples, axis=0)
        if samples > 1:
            noisy += tf.random.normal(tf.shape(noisy), stddev=spread)
        with tf.GradientTape() as tape:
            tape.watch(noisy)
            score = self._score(self.model(noisy, training=False),
                                tf.repeat(labels, samples, axis=0))
        grads = tf.reshape(tape.gradient(score, noisy), (n, samples, *self.spec.model_shape))
        pixels = tf.abs(x * tf.reduce_mean(grads, axis=1))
        if self.spec.layout == "chw":
            pixels = tf.transpose(pixels, (0, 2, 3, 1))
        pixels = tf.reshape(pixels, (n, *self.spec.pixel_shape))
        return tf.reduce_sum(pixels, axis=-1)


def _normalised(heatmap: np.ndarray) -> np.ndarray:
    """Scale to 0-1 by the maximum (all zeros stay zeros: nothing moved the score)."""
    heatmap = np.nan_to_num(heatmap.astype(np.float32), nan=0.0, posinf=0.0)
    top = float(heatmap.max(initial=0.0))
    return heatmap / top if top > 0 else np.zeros_like(heatmap)
