"""Shared fixtures: toy models built once per session, apps and clients around them."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Every app and gunicorn server of the session shares one runtime cache (each test model
# is converted once), and RUNTIME=auto times runtimes briefly: tests check which runtime
# serves and that its answers are Keras', not which is fastest (bench/runtimes.py does).
os.environ.setdefault("RUNTIME_CACHE_DIR", tempfile.mkdtemp(prefix="h5serve-test-runtimes."))
os.environ.setdefault("RUNTIME_TIMING_SECONDS", "0.05")
sys.path.insert(0, str(Path(__file__).parent))

from containers import Engine, engine_environment, load_into_podman, proxy_ca_bundle, script
from servers import ROOT
from toy_models import brightness_model, write_card

from app import create_app
from app.config import DEFAULT_MODEL_PATH
from scripts.idx import DATASET_DIR, load_idx

MakeApp = Callable[..., Flask]
pytest_plugins = ("trained_models",)  # Fashion-MNIST models trained once per session


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every server of the session is stopped by now: the session's runtime cache goes
    (one was left in /tmp per run before), unless it is one the caller named."""
    cache = Path(os.environ["RUNTIME_CACHE_DIR"])
    if cache.parent == Path(tempfile.gettempdir()) \
            and cache.name.startswith("h5serve-test-runtimes."):
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def bright_model(models_dir: Path) -> Path:
    """28x28 grayscale toy: label "bright" when the mean pixel is above half, else "dark"."""
    path = brightness_model(models_dir / "bright.h5", (28, 28, 1))
    write_card(path, labels=["dark", "bright"], description="toy brightness model")
    return path


@pytest.fixture(scope="session")
def make_app() -> MakeApp:
    """Build an app for `model_path` with setting overrides (flaskr's test_config)."""

    def build(model_path: Path, **settings: object) -> Flask:
        app = create_app({"MODEL_PATH": model_path, **settings})
        app.testing = True
        return app

    return build


@pytest.fixture(scope="session")
def app(make_app: MakeApp, bright_model: Path) -> Flask:
    return make_app(bright_model, MAX_CONTENT_LENGTH=200_000, MAX_PREDICT_ROWS=8,
                    MAX_IMAGE_PIXELS=4_000_000)


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def fashion_app(make_app: MakeApp) -> Flask:
    """The real bundled model."""
    return make_app(DEFAULT_MODEL_PATH)


@pytest.fixture(scope="session")
def fashion_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The first 300 real Fashion-MNIST test images (uint8 28x28) and their labels."""
    images = load_idx(DATASET_DIR / "t10k-images-idx3-ubyte.gz")[:300]
    labels = load_idx(DATASET_DIR / "t10k-labels-idx1-ubyte.gz")[:300]
    return images, labels


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    """Our own dockerd with Compose v2 and the debian:bookworm-slim base (made once per run).

    No engine, no silent skip: if it cannot start, every container test fails saying why.
    """
    script("install")
    script("start-docker", timeout=120)
    script("base-image")
    engine = Engine("docker", engine_environment("docker"))
    try:
        yield engine
    finally:
        script("stop-docker")


@pytest.fixture(scope="session")
def project_images(docker_engine: Engine) -> Engine:
    """The project's own images, built from its Dockerfiles with `docker compose build`.

    The proxy's CA reaches pip as the EXTRA_CA_CERT build arg, as it would behind a
    company proxy; the layer cache makes a rebuild with unchanged files take seconds.
    """
    ca = proxy_ca_bundle()
    docker_engine.docker("compose", "-f", str(ROOT / "docker-compose.yml"), "build",
                         timeout=1200, extra_env={"EXTRA_CA_CERT": ca} if ca else None)
    return docker_engine


@pytest.fixture(scope="session")
def podman_engine(project_images: Engine) -> Iterator[Engine]:
    """Rootful podman (runc) behind its Docker-compatible socket, with the same images."""
    script("start-podman")
    engine = Engine("podman", engine_environment("podman"))
    try:
        load_into_podman(project_images, engine)
        yield engine
    finally:
        script("stop-podman")
