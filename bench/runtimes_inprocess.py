"""Part A of `make bench-runtimes`: the models, and each runtime in process.

Runs in a child process of bench/runtimes.py (TensorFlow's memory and threads go with
it): builds the 224 px models with random weights (nothing downloaded), then for each
model forces every runtime, times `Classifier.predict` at batch 1 and 16 in turns
(app.runtime.engines.timing, the best of three rounds), reads each runtime's parity with
Keras, and loads it once more under RUNTIME=auto to see what it picks and why.
"""

from __future__ import annotations

import os
import timeit
from pathlib import Path
from typing import Any

from app.config import RUNTIMES, Settings
from bench.inprocess import mobilenet_v2
from bench.run import BUNDLED, ROOT

MODELS = ("fashion_mnist", "mobilenet_v2", "efficientnet_b0", "teachable_machine")
BATCH_SIZES = (1, 16)
TM_LABELS = ("Cat", "Dog", "Neither")


def model_files(folder: Path) -> dict[str, Path]:
    """Where each model lives: one folder each, since a labels.txt names its neighbours."""
    return {"fashion_mnist": BUNDLED, "mobilenet_v2": folder / "mobilenet_v2" / "model.h5",
            "efficientnet_b0": folder / "efficientnet_b0" / "model.h5",
            "teachable_machine": folder / "converted_keras" / "keras_model.h5"}


def build_models(files: dict[str, Path]) -> None:
    """Write the 224 px models asked for, each from the same seed."""
    import keras

    def efficientnet_b0(path: Path) -> None:
        keras.applications.EfficientNetB0(weights=None, input_shape=(224, 224, 3)).save(path)

    builders = {"mobilenet_v2": mobilenet_v2, "efficientnet_b0": efficientnet_b0,
                "teachable_machine": teachable_machine}
    for name, path in files.items():
        if name in builders:
            path.parent.mkdir(parents=True, exist_ok=True)
            keras.utils.set_random_seed(7)
            builders[name](path)


def teachable_machine(path: Path) -> None:
    """Shaped like tests/trained_models.py's teachable_machine_model, at 224 px, untrained:
    a truncated MobileNetV2 (alpha 0.35) renamed "model1" inside a Sequential inside a
    Sequential, a Sequential Dense head, written by Keras 2 with a labels.txt."""
    import tf_keras as keras

    layers = keras.layers
    mobilenet = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=0.35,
                                               include_top=False, weights=None)
    model1 = keras.Model(mobilenet.input, mobilenet.output, name="model1")
    features = keras.Sequential([model1, layers.GlobalAveragePooling2D()], name="sequential_1")
    head = keras.Sequential([layers.Dense(100, activation="relu"),
                             layers.Dense(len(TM_LABELS), activation="softmax")],
                            name="sequential_3")
    model = keras.Sequential([keras.Input((224, 224, 3)), features, head], name="sequential_4")
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    model.save(path)
    path.with_name("labels.txt").write_text(
        "".join(f"{i} {name}\n" for i, name in enumerate(TM_LABELS)))


def in_process(files: dict[str, Path], images: dict[str, Path], seconds: float,
               threads: int, cache: Path) -> dict[str, Any]:
    """Part A, in a fresh process: threads are set before TensorFlow makes its pools."""
    os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"] = str(threads), "1"
    build_models(files)
    return {name: _runtimes_of(path, images[name], seconds, cache / name)
            for name, path in files.items()}


def _runtimes_of(path: Path, image: Path, seconds: float, cache: Path) -> dict[str, Any]:
    """Every runtime forced on one model, timed in turns; then RUNTIME=auto's pick."""
    from app.runtime.classifier import Classifier
    from app.runtime.engines import Engine
    from app.runtime.engines.timing import measure
    from app.runtime.imaging import decode_image, maybe_invert
    from app.runtime.loading import ModelLoadError

    def loaded(runtime: str) -> Classifier:
        settings = Settings.load({"RUNTIME": runtime, "RUNTIME_CACHE_DIR": str(cache)})
        classifier = Classifier(path, settings, examples_dir=ROOT / "static" / "examples")
        classifier.load()
        return classifier

    rows: dict[str, dict[str, Any]] = {}
    classifiers: dict[str, Classifier] = {}
    for runtime in RUNTIMES:
        try:
            classifiers[runtime] = loaded(runtime)
        except ModelLoadError as exc:
            rows[runtime] = {"failure": str(exc).split(f"RUNTIME={runtime}: ", 1)[-1]}
    spec = classifiers["tensorflow"].image_spec
    assert spec is not None
    data, limit = image.read_bytes(), Settings().MAX_IMAGE_PIXELS

    def prepare() -> Any:  # what a request's handler does before the batcher
        return spec.to_model_input(maybe_invert(decode_image(data, spec, limit), spec.invert)[None])

    engines = [Engine(name, "", c.predict) for name, c in classifiers.items()]
    timings = measure(engines, prepare(), list(BATCH_SIZES), seconds)
    for name, classifier in classifiers.items():
        assert classifier.runtime is not None
        candidate = classifier.runtime.candidates[-1]
        rows[name] = {"images_per_s": {str(b): round(v, 1) for b, v in timings[name].items()},
                      "parity": candidate.parity.summary() if candidate.parity and
                      name != "tensorflow" else "the reference (Keras)",
                      "engine": classifier.runtime.engine.description, "note": candidate.note}
    classifiers.clear()
    engines.clear()
    auto = loaded("auto").runtime
    assert auto is not None
    decode_s = min(timeit.repeat(prepare, number=20, repeat=5)) / 20
    return {"runtimes": rows, "auto": {"runtime": auto.engine.name, "why": auto.reason,
                                       "candidates": auto.describe()["candidates"]},
            "decode_ms": round(1000 * decode_s, 2)}
