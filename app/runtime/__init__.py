"""The model side of h5serve, usable without a web app (benchmarks and tests call it directly).

Loading `.h5`/`.keras` files, the input/output spec and model card, image decoding into
model input, the classifier, the micro-batcher and the off-hub thread runner. It may
import `app.config`, `app.metrics` and itself only: no Flask, no Werkzeug, no HTTP.
"""
