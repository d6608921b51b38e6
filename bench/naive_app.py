"""The tutorial way to serve a Keras model, kept only as the benchmark's baseline.

Module-level `load_model`, `model.predict` per request, run under gunicorn *sync*
workers: what most "deploy your Keras model with Flask" posts do. Not part of h5serve.
"""

import os

import numpy as np
from flask import Flask, jsonify, request
from keras.models import load_model
from PIL import Image

model = load_model(os.environ["MODEL_PATH"], compile=False)
size = tuple(model.inputs[0].shape[1:3])
app = Flask(__name__)


@app.route("/predictlabel", methods=["POST"])
def predict_label():
    image = Image.open(request.files["image"]).convert("L").resize(size)
    x = np.asarray(image, dtype="float32")[None, :, :, None] / 255.0
    probabilities = model.predict(x, verbose=0)[0]
    return jsonify({
        "success": True,
        "most_probable_label": str(int(np.argmax(probabilities))),
        "predictions": [{"label": str(i), "probability": float(p)}
                        for i, p in enumerate(probabilities)],
    })
