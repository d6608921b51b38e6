"""The installed dependencies are the ones requirements.txt means: one TensorFlow, the CPU build."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from servers import ROOT, VENV_BIN

pytestmark = [pytest.mark.slow]

CHECK = [str(VENV_BIN / "python"), str(ROOT / "scripts" / "check_tensorflow.py")]


def test_exactly_one_tensorflow_distribution_is_installed() -> None:
    result = subprocess.run(CHECK, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "tensorflow_cpu==2.21.0" in result.stdout.replace("-", "_")


def test_the_check_fails_when_a_second_distribution_shares_the_folder(tmp_path: Path) -> None:
    """What `pip install tf-keras` with its dependencies would do: add the GPU build."""
    info = tmp_path / "tensorflow-2.21.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tensorflow\nVersion: 2.21.0\n")
    (info / "top_level.txt").write_text("tensorflow\n")
    result = subprocess.run(CHECK, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1
    assert "tensorflow==2.21.0" in result.stderr and "exactly one" in result.stderr


def test_requirements_pin_the_cpu_build_and_install_tf_keras_without_deps() -> None:
    runtime = (ROOT / "requirements.txt").read_text().splitlines()
    assert "tensorflow-cpu==2.21.0" in runtime
    assert not any(line.startswith(("tensorflow==", "tf-keras")) for line in runtime)
    assert "tf-keras==2.21.0" in (ROOT / "requirements-no-deps.txt").read_text().splitlines()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--no-deps -r requirements-no-deps.txt" in dockerfile
    assert "scripts/check_tensorflow.py" in dockerfile
