"""Memory per served model: a worker's RSS as model versions are added to its repository.

Every worker holds every served version, so MAX_MODELS times this is what a worker may
grow to. Loads copies of the bundled model, then of a MobileNetV2 (alpha 1.0, 224x224,
random weights: the size of a typical transfer-learning model) into one process, through
the same repository and roll-out code the service uses, and prints the RSS after each.

    .venv/bin/python -m bench.models_memory [--copies 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from app.config import DEFAULT_MODEL_PATH, Settings
from app.runtime.repository import ModelRepository
from app.runtime.rollout import Rollout


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _mobilenet(path: Path) -> None:
    import keras

    keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None,
                                   classes=10).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3, help="copies of each model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copy(DEFAULT_MODEL_PATH, root / "fashion0.h5")
        settings = Settings.load({"MODEL_REPOSITORY": root, "MODEL_POLL_SECONDS": 0,
                                  "MAX_MODELS": 4 * args.copies, "SELF_CHECK": "off"})
        models = ModelRepository(settings)
        rollout = Rollout(models, settings)
        rollout.start()
        print(f"one worker, bundled model loaded: RSS {rss_mib():.0f} MiB")
        sources = {"bundled Fashion-MNIST": (".h5", lambda p: shutil.copy(DEFAULT_MODEL_PATH, p)),
                   "MobileNetV2 224x224": (".keras", _mobilenet)}
        for title, (suffix, write) in sources.items():
            for copy in range(args.copies):
                before = rss_mib()
                stem = f"{title.split()[0].lower()}{copy + 1}"
                staging = root / f".{stem}{suffix}"
                write(staging)
                staging.rename(root / f"{stem}{suffix}")
                rollout.reconcile()
                rollout.reconcile()  # loaded on the second look, as in the service
                print(f"+ {title} copy {copy + 1}: RSS {rss_mib():.0f} MiB "
                      f"(+{rss_mib() - before:.0f} MiB), {models.count()} versions served")


if __name__ == "__main__":
    main()
