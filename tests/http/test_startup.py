"""What a new user sees when the service starts: a clean log, or one line saying what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import ROOT, VENV_BIN, free_port, gunicorn

from app.config import DEFAULT_MODEL_PATH

pytestmark = [pytest.mark.slow]


def _start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """gunicorn as `make run` starts it; expected to give up at once."""
    return subprocess.run(
        [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "BIND": f"127.0.0.1:{free_port()}", "WORKERS": "2", **env})


def _bad_settings(tmp_path: Path) -> dict[str, tuple[dict[str, str], str]]:
    text = tmp_path / "notes.h5"
    text.write_text("not a model")
    pointer = tmp_path / "lfs.h5"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 9\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    return {
        "missing": ({"MODEL_PATH": str(tmp_path / "cats_vs_dogs.h5")}, "no such file"),
        "directory": ({"MODEL_PATH": str(tmp_path)}, "not a file"),
        "text": ({"MODEL_PATH": str(text)}, "neither an HDF5 (.h5) nor a .keras"),
        "lfs-pointer": ({"MODEL_PATH": str(pointer)}, "git lfs pull"),
        "bad-number": ({"MAX_BATCH_SIZE": "lots"}, "invalid value for MAX_BATCH_SIZE"),
        "metrics-dir": ({"PROMETHEUS_MULTIPROC_DIR": "/proc/h5serve-metrics"},
                        "PROMETHEUS_MULTIPROC_DIR=/proc/h5serve-metrics"),
        "empty-repository": ({"MODEL_REPOSITORY": str(empty)}, "no model in it"),
        "broken-repository": ({"MODEL_REPOSITORY": str(tmp_path)},
                              f"no servable model: {pointer}: a Git LFS pointer"),
        "no-repository": ({"MODEL_REPOSITORY": str(tmp_path / "nope")}, "not a folder"),
        "bad-poll": ({"MODEL_POLL_SECONDS": "-1"}, "MODEL_POLL_SECONDS must not be negative"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "text", "lfs-pointer", "bad-number",
                                  "metrics-dir", "empty-repository", "broken-repository",
                                  "no-repository",
                                  "bad-poll"])
def test_a_wrong_setting_fails_in_one_line_before_any_worker(tmp_path: Path, case: str) -> None:
    env, reason = _bad_settings(tmp_path)[case]
    result = _start(tmp_path, **env)
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0
    assert len(output) == 1, output
    assert output[0].startswith("h5serve: cannot start: ") and reason in output[0], output


def test_a_missing_metrics_dir_is_created(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics" / "h5serve"
    with gunicorn(DEFAULT_MODEL_PATH, tmp_path / "gunicorn.log",
                  PROMETHEUS_MULTIPROC_DIR=str(metrics)):
        assert metrics.is_dir()


def test_the_master_checks_without_importing_tensorflow() -> None:
    """TensorFlow does not survive a fork: the config file's checks must not load it."""
    code = ("import runpy, sys; runpy.run_path('gunicorn.conf.py'); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.split() == ["False", "False"]


@pytest.fixture(scope="module")
def start_up_log(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The log of two workers started as a user starts them, and stopped."""
    log = tmp_path_factory.mktemp("start-up") / "gunicorn.log"
    with gunicorn(DEFAULT_MODEL_PATH, log, workers=2):
        pass
    lines = log.read_text().splitlines()
    assert sum("Worker ready" in line for line in lines) == 2
    return lines


def test_a_cpu_only_start_up_log_has_no_errors(start_up_log: list[str]) -> None:
    """No CUDA probing and no E-level lines: a start-up log that looks like failure worries."""
    lines = start_up_log
    alarming = [line for line in lines
                if any(word in line for word in ("E0000", "[ERROR]", " ERROR ", "cuInit",
                                                 "cuda", "CUDA", "Traceback"))]
    assert alarming == []


TENSORFLOW_NOTICES = ("before absl::InitializeLog() is called", "oneDNN custom operations are on",
                      "This TensorFlow binary is optimized", "rebuild TensorFlow with the")


def test_a_worker_logs_none_of_tensorflows_start_up_notices(start_up_log: list[str]) -> None:
    """Eight lines a worker used to print that nobody can act on (app.runtime.tensorflow_import)."""
    notices = [line for line in start_up_log if any(n in line for n in TENSORFLOW_NOTICES)]
    assert notices == []


def _import_fake_tensorflow(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """Import a stand-in for TensorFlow, writing to fd 2 as its C++ code does, through
    the filter that TensorFlow's first import goes through."""
    (tmp_path / "fake_tf.py").write_text("import os\n" + body)
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
            "from app.runtime.tensorflow_import import _import_without_notices; "
            "_import_without_notices('fake_tf'); print('imported', file=sys.stderr)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


ABSL_PREFACE = ("WARNING: All log messages before absl::InitializeLog() is called are written "
                "to STDERR\n")
ONEDNN = ("I0000 00:00:1796618709.656300    3743 port.cc:153] oneDNN custom operations are "
          "on. You may see slightly different numerical results due to floating-point "
          "round-off errors. To turn them off, set `TF_ENABLE_ONEDNN_OPTS=0`.\n")


def test_the_filter_drops_the_two_notices_and_nothing_else(tmp_path: Path) -> None:
    error = "E0000 00:00:1796618709.7 3743 cuda_dnn.cc:8579] Unable to register cuDNN\n"
    warning = "W0000 00:00:1796618709.8 3743 port.cc:153] oneDNN something else\n"
    result = _import_fake_tensorflow(
        tmp_path, "".join(f"os.write(2, {line!r}.encode())\n"
                          for line in (ABSL_PREFACE, ONEDNN, error, warning, ONEDNN)))
    assert result.returncode == 0, result.stderr
    assert result.stderr == error + warning + "imported\n"


def test_a_crash_inside_the_import_still_reaches_the_log(tmp_path: Path) -> None:
    """A fatal error aborts the process in a static initialiser: the filter is a process
    of its own, so what was written before the abort is not lost with it."""
    fatal = ("F0000 00:00:1.0 1 cpu_feature_guard.cc:96] The TensorFlow library was compiled "
             "to use AVX instructions, but these aren't available on your machine.\n")
    result = _import_fake_tensorflow(
        tmp_path, f"os.write(2, {(ABSL_PREFACE + fatal)!r}.encode())\nos.abort()\n")
    assert result.returncode != 0
    assert result.stderr == fatal


def _config_output(**env: str) -> str:
    """What gunicorn prints while reading gunicorn.conf.py (its _preflight), in a process
    of its own: --check-config with a stand-in WSGI app, so nothing listens and no model
    or gRPC server starts."""
    result = subprocess.run(
        [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--check-config",
         "wsgiref.simple_server:demo_app"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "BIND": "127.0.0.1:5000", "GRPC_BIND": "", "AUTH": "off", **env})
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize(("env", "warned"), [
    ({"BIND": "0.0.0.0:5000"}, "BIND=0.0.0.0:5000"),
    ({"BIND": "[::]:5000"}, "BIND=[::]:5000"),
    ({"GRPC_BIND": "0.0.0.0:8501"}, "GRPC_BIND=0.0.0.0:8501"),
    ({"GRPC_BIND": "[::]:8501"}, "GRPC_BIND=[::]:8501"),
    ({"BIND": "10.1.2.3:5000", "GRPC_BIND": "10.1.2.3:8501"}, "GRPC_BIND=10.1.2.3:8501"),
    ({}, None),
    ({"BIND": "127.0.0.1:5000", "GRPC_BIND": "127.0.0.1:8501"}, None),
    ({"BIND": "localhost:5000", "GRPC_BIND": "[::1]:8501"}, None),
    ({"BIND": "unix:/tmp/h5serve.sock", "GRPC_BIND": "localhost:8501"}, None),
])
def test_auth_off_beyond_loopback_is_warned_for_http_and_grpc(env: dict[str, str],
                                                               warned: str | None) -> None:
    output = _config_output(**env)
    warnings = [line for line in output.splitlines() if line.startswith("h5serve: warning:")]
    if warned is None:
        assert warnings == [], output
    else:
        assert any(warned in line and "AUTH=off" in line for line in warnings), output


def test_no_warning_with_keys_on(tmp_path: Path) -> None:
    keys = tmp_path / "api-keys"
    keys.write_text("alice alice-0123456789-abcdefghij\n")
    output = _config_output(BIND="0.0.0.0:5000", GRPC_BIND="0.0.0.0:8501", AUTH="keys",
                            API_KEYS_FILE=str(keys), CORS_ORIGINS="")
    assert "h5serve: warning:" not in output, output
