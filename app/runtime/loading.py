"""Open a saved Keras model file with the Keras that reads it faithfully.

Keras 3 misreads some HDF5 files written by Keras 2.x: a Keras 2.2.4 `Sequential`
whose first `Dense` carries `batch_input_shape: [null, 784]` loads with input shape
`(None, None, 784)` and rejects a `(1, 784)` batch. `tf-keras` is Keras 2 itself, so
files whose `keras_version` attribute says 2.x (or says nothing: Keras 1/2 era) are
loaded with it, and Keras 3 files with Keras 3. Choosing by the writer's version, not
by trial and error, keeps the loaded graph identical to the one that was saved.
"""

from __future__ import annotations

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
    if use_legacy:
        import tf_keras as library
    else:
        import keras as library
    log.info("loading %s (written by Keras %s) with %s %s", path, written_by or "unknown",
             library.__name__, library.__version__)
    try:
        model = library.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file; all mean "cannot serve"
        raise ModelLoadError(f"{library.__name__} could not load {path}: "
                             f"{type(exc).__name__}: {exc}") from exc
    return LoadedModel(model=model, library=library.__name__,
                       library_version=library.__version__, written_by=written_by)
