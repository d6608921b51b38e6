"""atheris fuzzer for the upload path: bytes -> decode_image -> maybe_invert -> model input.

Every input must end in pixels of the right shape or an InvalidInput (a 400 for clients).
    python tests/fuzz/fuzz_decode.py SEED_DIR -max_total_time=60
"""

import sys

import atheris
import numpy as np

with atheris.instrument_imports(include=["app", "json", "PIL"]):
    from app.protocols.rest.errors import as_api_error
    from app.runtime.errors import InvalidInput
    from app.runtime.imaging import decode_image, maybe_invert
    from app.runtime.spec import ImageSpec

SPECS = [ImageSpec(28, 28, 1, "hwc", invert="auto"), ImageSpec(32, 32, 3, "chw"),
         ImageSpec(28, 28, 1, "flat", invert=True)]


def test_one(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    spec = SPECS[provider.ConsumeIntInRange(0, len(SPECS) - 1)]
    payload = provider.ConsumeBytes(provider.remaining_bytes())
    try:
        pixels = decode_image(payload, spec, 4_000_000)
    except InvalidInput as error:
        assert as_api_error(error).status == 400, error.code
        return
    assert pixels.shape == spec.pixel_shape and pixels.dtype == np.uint8
    model_input = spec.to_model_input(maybe_invert(pixels, spec.invert)[None])
    assert model_input.shape == (1, *spec.model_shape) and np.isfinite(model_input).all()


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()
