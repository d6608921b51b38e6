"""`flask --app app inspect`: a downloaded model checked against labelled images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from PIL import Image
from servers import ROOT
from trained_models import LABELS

from app.config import DEFAULT_MODEL_PATH


def _labelled_folders(root: Path, images: np.ndarray, labels: np.ndarray,
                      names: list[str]) -> Path:
    """image_dataset_from_directory's layout: one sub-folder of PNGs per label."""
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    return root


def _inspect(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["inspect", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def cli_app(make_app) -> Flask:
    return make_app(DEFAULT_MODEL_PATH)


@pytest.fixture(scope="module")
def named_folders(tmp_path_factory: pytest.TempPathFactory, fashion_test_set) -> Path:
    """Folders named as people name them: "/" is not allowed, so "T-shirt-top"."""
    names = [label.replace("/", "-") for label in LABELS]
    images, labels = fashion_test_set
    return _labelled_folders(tmp_path_factory.mktemp("named"), images[:150], labels[:150],
                             names)


def test_the_raw_model_scores_best_with_raw_pixels_and_the_card_says_so(
        cli_app: Flask, raw_model_with_examples: Path, named_folders: Path) -> None:
    code, output = _inspect(cli_app, str(raw_model_with_examples), "--examples",
                            str(named_folders), "--json")
    assert code == 0, output
    found = json.loads(output[output.index("{"):])
    scores = {s["scale"]: s["right"] / s["total"] for s in found["scores"]}
    assert set(scores) == {"unit", "symmetric", "raw", "centered"}  # no ImageNet ones: gray
    assert found["best_scale"] == "raw" and scores["raw"] >= 0.5, scores
    assert scores["unit"] < scores["raw"] - 0.25, scores
    assert found["card"] == {"labels": LABELS, "scale": "raw"}
    assert found["card_path"] == str(raw_model_with_examples.with_suffix(".json"))


def test_the_text_report_names_each_choice_and_the_better_scaling(
        cli_app: Flask, raw_model_with_examples: Path, named_folders: Path) -> None:
    code, output = _inspect(cli_app, str(raw_model_with_examples), "--examples",
                            str(named_folders))
    assert code == 0, output
    assert "scale    unit: nothing in the model says otherwise" in output
    assert "output   softmax: a softmax over the classes" in output
    assert "labels   10 from model card: T-shirt/top, Trouser" in output
    assert "150 labelled images" in output
    assert "  <- best" in output.split("scale raw", 1)[1].splitlines()[0]
    assert "scores better with scale raw than with unit" in output
    assert '"scale": "raw"' in output.split("card to copy", 1)[1]


def test_a_model_with_only_indexes_takes_its_labels_from_the_folders(
        cli_app: Flask, logits_model: Path, tmp_path: Path, fashion_test_set) -> None:
    names = [f"class{i}" for i in range(10)]  # sorted order is the index order
    images, labels = fashion_test_set
    folders = _labelled_folders(tmp_path, images[:100], labels[:100], names)
    code, output = _inspect(cli_app, str(logits_model), "--examples", str(folders), "--json")
    assert code == 0, output
    found = json.loads(output[output.index("{"):])
    assert found["card"] == {"labels": names, "scale": "unit"}
    assert found["model"]["output"] == "logits (softmax applied)"


def test_a_per_label_cap_is_reported(cli_app: Flask, raw_model_with_examples: Path,
                                     named_folders: Path) -> None:
    code, output = _inspect(cli_app, str(raw_model_with_examples), "--examples",
                            str(named_folders), "--per-label", "3", "--json")
    found = json.loads(output[output.index("{"):])
    assert code == 0 and found["scores"][0]["total"] == 30
    assert any("over --per-label 3" in line for line in found["skipped"])


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: (root / "Rock").mkdir() or Image.new("L", (28, 28)).save(
        root / "Rock" / "a.png"), "folders Rock match none of the model's 10 labels"),
    (lambda root: None, "no images in sub-folders"),
])
def test_folders_that_cannot_be_used_fail_in_one_line(
        cli_app: Flask, raw_model_with_examples: Path, tmp_path: Path, make,
        message: str) -> None:
    make(tmp_path)
    code, output = _inspect(cli_app, str(raw_model_with_examples), "--examples",
                            str(tmp_path))
    assert code == 1 and message in output, output
    assert "Traceback" not in output


def test_an_lfs_pointer_is_named_as_one(cli_app: Flask, tmp_path: Path) -> None:
    pointer = tmp_path / "model.h5"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\n"
                       "oid sha256:" + "0" * 64 + "\nsize 1234\n")
    code, output = _inspect(cli_app, str(pointer))
    assert code == 1 and "git lfs pull" in output and "Traceback" not in output


def test_the_documented_command_line(tmp_path: Path) -> None:
    """Exactly as docs/models.md writes it, in a fresh process."""
    command = ".venv/bin/flask --app app inspect models/fashion_mnist.h5"
    assert f"```sh\n{command}\n```" in (ROOT / "docs" / "models.md").read_text()
    flask = Path(sys.executable).with_name("flask")
    result = subprocess.run([str(flask), *command.split()[1:]], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "scale    unit: the model card says so" in result.stdout
    assert "card to copy (models/fashion_mnist.json):" in result.stdout


def _flask_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`flask --app app ARGS` in a fresh process, as a user types it; stderr ends with
    whether TensorFlow was imported (the cost of loading any model)."""
    script = ("import sys\nfrom flask.cli import main\nsys.argv = ['flask', *sys.argv[1:]]\n"
              "try:\n    main()\nfinally:\n"
              "    print('tensorflow imported:', 'tensorflow' in sys.modules, file=sys.stderr)")
    return subprocess.run([sys.executable, "-c", script, "--app", "app", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [("inspect", "--help"), ("--help",)])
def test_help_loads_no_model(args: tuple[str, ...]) -> None:
    """Finding or listing the commands builds the commands alone: no model, no
    TensorFlow, nothing logged (it took 2.7 s and a page of log lines)."""
    result = _flask_cli(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "inspect" in result.stdout
    assert result.stderr == "tensorflow imported: False\n", result.stderr[-2000:]


def test_inspecting_another_model_loads_that_one_only(logits_model: Path) -> None:
    result = _flask_cli("inspect", str(logits_model))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "model    logits.h5" in result.stdout
    assert "fashion_mnist" not in result.stdout + result.stderr  # the bundled model
    assert " ready in " not in result.stderr  # no served model was warmed up
