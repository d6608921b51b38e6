"""The wire formats: the seed JSON API, raw pixel rows, TF Serving REST, Open Inference v2.

Each module turns one protocol's requests into calls on the runtime's InferenceService and
its answers back into that protocol's JSON, errors included. It may import Flask, the
runtime and `app.config`/`app.metrics`; never `app.http`.
"""
