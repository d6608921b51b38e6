"""Bounded atheris runs on the upload decoder and the JSON batch parser, plus the replay
of every input that ever crashed them (tests/fuzz/regressions/)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import corpus
from servers import ROOT

from app.config import Settings

pytestmark = [pytest.mark.slow]

FUZZ = ROOT / "tests" / "fuzz"
REGRESSIONS = FUZZ / "regressions"
SECONDS = int(os.environ.get("FUZZ_SECONDS", "60"))


def _seeds(harness: str, directory: Path) -> None:
    """The hostile corpus's bodies as seeds (first byte: which spec the harness uses)."""
    defaults = Settings()
    cases = corpus(defaults.MAX_CONTENT_LENGTH, 64, defaults.MAX_IMAGE_PIXELS)
    for i, case in enumerate(cases):
        wanted = "/predictlabel" if harness == "fuzz_decode" else "/predict"
        if case.path != wanted or len(case.body) > 200_000:
            continue
        body = case.body
        if harness == "fuzz_decode" and b"\r\n\r\n" in body:  # the file, out of its wrapper
            body = body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
        (directory / f"seed{i}").write_bytes(bytes([i % 3]) + body)
    for example in (ROOT / "static" / "examples").glob("*.png"):
        (directory / example.name).write_bytes(b"\0" + example.read_bytes())


def _rss_limit_mb(headroom: int) -> int:
    """libFuzzer reads its peak RSS from getrusage, and Linux carries a process's peak across
    fork and exec: the fuzzer starts at this test process's peak (every model the session
    loaded), so its limit is that plus the headroom the fuzzer itself may use."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + headroom


def _run(harness: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FUZZ / f"{harness}.py"), *args],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=SECONDS + 300)


@pytest.mark.parametrize("harness", ["fuzz_decode", "fuzz_rows"])
def test_bounded_fuzzing_finds_no_crash(harness: str, tmp_path: Path) -> None:
    seeds, artifacts = tmp_path / "seeds", tmp_path / "artifacts"
    seeds.mkdir()
    artifacts.mkdir()
    _seeds(harness, seeds)
    result = _run(harness, str(seeds), f"-max_total_time={SECONDS}", "-timeout=20",
                  f"-rss_limit_mb={_rss_limit_mb(4096)}", f"-artifact_prefix={artifacts}/")
    for crash in artifacts.iterdir():  # keep it as a regression case for every later run
        shutil.copy(crash, REGRESSIONS / f"{harness}-{crash.name}")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr, result.stderr[-2000:]


def test_regression_inputs_stay_fixed() -> None:
    """Each saved crash input (named <harness>-crash-<hash>) runs clean through its harness."""
    for case in sorted(p for p in REGRESSIONS.iterdir() if p.name[0] != "."):
        result = _run(case.name.split("-", 1)[0], str(case))
        assert result.returncode == 0, (case.name, result.stderr[-4000:])
