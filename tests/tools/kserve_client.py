"""Ask a V2 server through the kserve package's own REST client (run in .venv-tools/kserve).

    python tests/tools/kserve_client.py BASE_URL MODEL_NAME INPUT_NAME

Prints one JSON object: server and model readiness, the answering model's name and the
output's shape, as KServe's own client sees them.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def main(base_url: str, model: str, input_name: str) -> None:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=30))
    tensor = InferInput(input_name, [1, 28, 28, 1], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 28, 28, 1), np.float32), binary_data=False)
    try:
        answer = await client.infer(base_url, InferRequest(model, [tensor]), model)
        found = {"server_ready": await client.is_server_ready(base_url),
                 "model_ready": await client.is_model_ready(base_url, model),
                 "model_name": answer.model_name,
                 "shape": list(answer.outputs[0].shape)}
    finally:
        await client.close()
    print(json.dumps(found))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
