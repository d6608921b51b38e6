"""Open a saved Keras model file with the Keras that reads it faithfully.

Keras 3 misreads some HDF5 files written by Keras 2.x: a Keras 2.2.4 `Sequential`
whose first `Dense` carries `batch_input_shape: [null, 784]` loads with input shape
`(None, None, 784)` and rejects a `(1, 784)` batch. `tf-keras` is Keras 2 itself, so
files whose `keras_version` attribute says 2.x (or says nothing: Keras 1/2 era) are
loaded with it, and Keras 3 files with Keras 3. Choosing by the writer's version, not
by trial and error, keeps the loaded graph identical to the one that was saved; only a
file the chosen Keras cannot read at all is tried with the other (the log says why).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.runtime.model_file import ModelFileError, archive_json, check_model_file
from app.runtime.tensorflow_import import import_tensorflow

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The model file cannot be served; the message says why and what to do."""


@dataclass(frozen=True)
class LoadedModel:
    """A Keras model object plus what we learned about its file."""

    model: Any
    library: str  # "keras" or "tf_keras"
    library_version: str
    written_by: str  # Keras version recorded in the file, "" when absent
    first_failure: str = ""  # why the Keras chosen first could not read it, if it could not


def read_keras_version(path: Path) -> str:
    """The `keras_version` an HDF5 model file records; raises ModelLoadError if not a model."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                hint = (" It holds weights only: save the whole model with model.save()."
                        if "layer_names" in f.attrs or "model_weights" not in f else "")
                raise ModelLoadError(f"{path} is an HDF5 file but not a saved Keras model "
                                     f"(no model_config).{hint}")
            version = f.attrs.get("keras_version", b"")
    except OSError as exc:
        raise ModelLoadError(f"{path} is not an HDF5 file ({exc}).") from None
    return version.decode() if isinstance(version, bytes) else str(version)


def read_keras_archive_version(path: Path) -> str:
    """The `keras_version` a `.keras` archive records in its metadata.json ("" if none)."""
    return str(archive_json(path, "metadata.json").get("keras_version", ""))


def load_keras_model(path: Path) -> LoadedModel:
    """Load `path` (.h5 or .keras) without compiling it (serving needs no optimizer)."""
    try:
        check_model_file(path)
    except ModelFileError as exc:
        raise ModelLoadError(str(exc)) from None
    if path.suffix == ".keras":
        written_by, use_legacy = read_keras_archive_version(path), False
    else:
        written_by = read_keras_version(path)
        use_legacy = not written_by.startswith("3.")
    import_tensorflow()  # both Keras import it; this way without its start-up notices
    names = ("tf_keras", "keras") if use_legacy else ("keras", "tf_keras")
    first = importlib.import_module(names[0])  # the other only if needed: it costs memory
    log.info("loading %s (written by Keras %s) with %s %s", path, written_by or "unknown",
             first.__name__, first.__version__)
    try:
        model, library, why = first.models.load_model(path, compile=False), first, ""
    except Exception as exc:  # Keras raises many types for a bad file; all mean "cannot serve"
        why = f"{first.__name__} could not load {path}: {type(exc).__name__}: {exc}"
        if path.suffix == ".keras":  # Keras 3's own format: tf_keras cannot read it
            raise ModelLoadError(why) from exc
        library = importlib.import_module(names[1])
        model = _second_try(library, path, why)
    return LoadedModel(model=model, library=library.__name__,
                       library_version=library.__version__, written_by=written_by,
                       first_failure=why)


def _second_try(library: Any, path: Path, why: str) -> Any:
    """Some Keras 2.2.4 files load only in tf-keras, some Keras 3 `.h5` files only in
    Keras 3, whatever the file says about its writer: the other Keras gets a turn."""
    try:
        model = library.models.load_model(path, compile=False)
    except Exception as exc:
        raise ModelLoadError(f"{why}; {library.__name__} could not either: "
                             f"{type(exc).__name__}: {exc}") from exc
    log.warning("loaded %s with %s %s, after %s", path, library.__name__,
                library.__version__, why)
    return model


def item_shape(tensor: Any) -> tuple[int | None, ...]:
    """Per-item shape of a Keras input/output tensor (Keras 3 and tf-keras alike)."""
    dims = [None if d is None else int(d) for d in tuple(tensor.shape)]
    if not dims:
        raise ModelLoadError("the model's tensors have no batch axis")
    return tuple(dims[1:])
