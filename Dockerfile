# h5serve app image: gunicorn (gevent workers) serving a Keras .h5 model on port 5000.
# nginx runs in its own container in front of it (nginx/Dockerfile, docker-compose.yml).
#
# Both images are built FROM debian:bookworm-slim with Debian's own Python 3.11 and nginx.
# Two stages: the first installs the Python packages into /opt/venv and slims them
# (TensorFlow's C++ headers and debug symbols are of no use to a server); the second gets
# only that venv and the application files.
#
# Behind a company proxy (build args, see the README):
#   PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_TRUSTED_HOST   another package index
#   EXTRA_CA_CERT   PEM text of a CA the proxy signs with, trusted for the pip step only
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS venv
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv binutils ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
# Unset unless given: pip then uses its defaults.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG EXTRA_CA_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements.txt requirements-no-deps.txt ./
COPY scripts/check_tensorflow.py scripts/
# tf-keras goes in with --no-deps: it requires `tensorflow`, which would install the GPU
# build over tensorflow-cpu (scripts/check_tensorflow.py fails the build if it did).
# Then drop what serving never reads: TensorFlow's C++ headers and symbol tables (not the
# symbols of the wheels' bundled *.libs: stripping a patchelf-ed library breaks loading it),
# libclang (a code-generation tool TensorFlow requires but never imports), pip; OpenVINO's
# GPU and NPU plugins (and the GPU's kernel tuning cache), its C headers and the frontends
# for formats h5serve never converts from (it reads TensorFlow, then its own IR); ONNX's
# backend test data, ONNX Runtime's transformer and quantization tools.
RUN cat /etc/ssl/certs/ca-certificates.crt > /tmp/pip-ca.pem \
    && printf '%s\n' "$EXTRA_CA_CERT" >> /tmp/pip-ca.pem \
    && export PIP_CERT=/tmp/pip-ca.pem \
    && /opt/venv/bin/pip install -r requirements.txt \
    && /opt/venv/bin/pip install --no-deps -r requirements-no-deps.txt \
    && /opt/venv/bin/python scripts/check_tensorflow.py \
    && /opt/venv/bin/pip uninstall -y -q libclang pip \
    && site=/opt/venv/lib/python3.11/site-packages \
    && rm -rf "$site/tensorflow/include" /tmp/pip-ca.pem \
    && ov="$site/openvino" \
    && rm -rf "$ov/include" "$ov/libs/cache.json" "$ov/libs/"libopenvino_intel_[gn]pu_plugin.so \
        "$ov/libs/"libopenvino_gguf_frontend.so.* "$ov/libs/"libopenvino_jax_frontend.so.* \
        "$ov/libs/"libopenvino_onnx_frontend.so.* "$ov/libs/"libopenvino_paddle_frontend.so.* \
        "$ov/libs/"libopenvino_pytorch_frontend.so.* \
        "$ov/libs/"libopenvino_tensorflow_lite_frontend.so.* \
        "$site/onnx/backend/test" "$site/onnxruntime/transformers" \
        "$site/onnxruntime/quantization" \
    && find "$site/tensorflow" -type f \( -name '*.so' -o -name '*.so.*' \) \
        -exec strip --strip-unneeded {} +

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    TF_CPP_MIN_LOG_LEVEL=2 \
    BIND=0.0.0.0:5000 \
    RUNTIME_CACHE_DIR=/var/cache/h5serve

# python3: the interpreter the venv was made with. openssl: the compose file's one-shot
# "certs" service makes a first self-signed certificate with scripts/make-cert.sh from
# this image. Debian's security updates replace exact versions, so neither is pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 openssl \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 h5serve \
    && useradd --system --uid 10001 --gid h5serve --home-dir /app --shell /usr/sbin/nologin h5serve

COPY --from=venv /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py ./
COPY app/ app/
COPY templates/ templates/
COPY static/ static/
COPY models/ models/
COPY scripts/make-cert.sh scripts/check_tensorflow.py scripts/healthcheck.py scripts/
# /var/cache/h5serve: models converted for ONNX Runtime / OpenVINO, shared by the workers;
# the deployment files mount a volume there (the root filesystem is read-only).
RUN mkdir -p /certs /var/cache/h5serve && chown h5serve:h5serve /certs /var/cache/h5serve

USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "scripts/healthcheck.py"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
