"""atheris fuzzer for the JSON batch path: bytes -> parse_json -> parse_pixel_rows.

Every input must end in a float32 pixel batch of the right shape, values 0-255, or an
ApiError with a 4xx status.
    python tests/fuzz/fuzz_rows.py SEED_DIR -max_total_time=60
"""

import sys

import atheris
import numpy as np

with atheris.instrument_imports(include=["app", "json", "PIL"]):
    from app.protocols.rest.bodies import parse_json
    from app.protocols.rest.errors import ApiError
    from app.protocols.rest.rows import parse_pixel_rows
    from app.runtime.spec import ImageSpec

SPECS = [ImageSpec(4, 4, 1, "hwc"), ImageSpec(2, 3, 3, "chw"), ImageSpec(3, 3, 1, "flat")]


def test_one(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    spec = SPECS[provider.ConsumeIntInRange(0, len(SPECS) - 1)]
    try:
        body = parse_json(provider.ConsumeBytes(provider.remaining_bytes()))
        if not isinstance(body, dict) or "input" not in body:
            return
        pixels = parse_pixel_rows(body["input"], spec, max_rows=64)
    except ApiError as error:
        assert 400 <= error.status < 500, error.status
        return
    assert pixels.dtype == np.float32 and pixels.shape[1:] == spec.pixel_shape
    assert 1 <= len(pixels) <= 64 and pixels.min() >= 0 and pixels.max() <= 255


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()
