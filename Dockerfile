# h5serve app image: gunicorn (gevent workers) serving a Keras .h5 model on port 5000.
# nginx runs in its own container in front of it (docker-compose.yml).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    BIND=0.0.0.0:5000

# openssl: the compose file's one-shot "certs" service makes a first self-signed
# certificate with scripts/make-cert.sh from this image. Debian's security updates
# replace exact versions, so the package is not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 h5serve \
    && useradd --system --uid 10001 --gid h5serve --home-dir /app --shell /usr/sbin/nologin h5serve

WORKDIR /app
# Dependencies first: this layer is reused until requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY gunicorn.conf.py ./
COPY app/ app/
COPY templates/ templates/
COPY static/ static/
COPY models/ models/
COPY scripts/make-cert.sh scripts/
RUN mkdir -p /certs && chown h5serve:h5serve /certs

USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:5000/readyz', timeout=2).status != 200)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
