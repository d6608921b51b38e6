"""Fail unless exactly one installed distribution provides the `tensorflow` package.

tensorflow and tensorflow-cpu install into the same `tensorflow/` folder. If a package
that requires `tensorflow` (tf-keras does) is installed with its dependencies, pip adds
the GPU build on top of the CPU one: the folder mixes both, the image grows by a gigabyte
and CUDA probing is back in the log. bootstrap.sh and the Dockerfile run this check.
"""

from __future__ import annotations

import sys
from importlib.metadata import distributions


def providers(package: str = "tensorflow") -> list[str]:
    """`name==version` of every installed distribution whose top-level modules include it."""
    found = set()
    for dist in distributions():
        top = (dist.read_text("top_level.txt") or "").split()
        if not top:
            top = [path.parts[0] for path in dist.files or ()]
        if package in top:
            found.add(f"{dist.metadata['Name']}=={dist.version}")
    return sorted(found)


def main() -> int:
    found = providers()
    if len(found) == 1:
        print(f"check_tensorflow: one TensorFlow distribution: {found[0]}")
        return 0
    print(f"check_tensorflow: expected exactly one distribution of `tensorflow`, found "
          f"{found or 'none'}; reinstall from requirements.txt and requirements-no-deps.txt "
          "(scripts/bootstrap.sh does)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
