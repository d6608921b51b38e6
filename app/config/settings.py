"""The app's settings: every variable a worker reads, declared once, typed, with its doc.

Read once at startup (each worker, and the master's checks in gunicorn.conf.py); tests
pass a mapping of overrides to `create_app(config)` instead of touching the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.config.paths import DEFAULT_KEYS_FILE, DEFAULT_REPOSITORY, DEFAULT_RUNTIME_CACHE
from app.config.validation import validate
from app.config.variables import EnvironmentSettings, variable


@dataclass(frozen=True)
class Settings(EnvironmentSettings):
    """Typed service configuration; field names are the environment variable names."""

    MODEL_PATH: Path | None = variable(
        None, "serve exactly this one Keras file (`.h5` or `.keras`) instead of the repository")
    MODEL_REPOSITORY: Path = variable(
        DEFAULT_REPOSITORY, "the model repository: `<name>.h5` files and `<name>/<version>/` "
        "folders, all served", shown="`models/`")
    DEFAULT_MODEL: str = variable(
        "", "the model `/predictlabel`, `/predict`, `/model` and the page answer with; unset "
        "with several models: the first by name", shown="the only one")
    MODEL_NAME: str = variable(
        "", "serve the repository's only model under this name (KServe sets the "
        "InferenceService's)")
    MODEL_POLL_SECONDS: float = variable(
        10.0, "how often each worker looks for new, changed or removed versions; `0` never")
    MAX_MODELS: int = variable(
        8, "most model versions one worker serves (each worker holds every served version); "
        "one more is refused with a log line. A new version replacing a served one always "
        "fits: the old one is held beside it only while it drains")
    MAX_CONTENT_LENGTH: int = variable(
        15 * 1024 * 1024, "largest request body, in bytes (413 above)",
        shown="`15728640` (15 MiB)")
    MAX_PREDICT_ROWS: int = variable(1024, "most rows in one `/predict` request")
    MAX_IMAGE_PIXELS: int = variable(
        50_000_000, "largest image, in pixels, checked from the header before decoding")
    MAX_BATCH_SIZE: int = variable(
        32, "most rows the model runs at once (requests queued meanwhile share a batch; on "
        "TensorFlow each batch is padded to 1, 2 or a multiple of 4 rows); a "
        "prepared model batches fewer where bigger batches measured no faster")
    MAX_BATCH_DELAY_MS: float = variable(
        0.0, "how long a batch may wait for company; 0 runs at once when the model is idle")
    MAX_QUEUE_SIZE: int = variable(
        64, "requests waiting for the model per worker before new ones get 503 "
        "(`overloaded`, with `Retry-After`)")
    MAX_EXPLAIN_QUEUE: int = variable(
        16, "explanations waiting per model version and worker before new ones get 503 "
        "(`overloaded`); they run after waiting predictions")
    EXPLAIN: str = variable(
        "lazy", "explanations: `lazy` reads the Keras model (and TensorFlow, about 400 MB per "
        "worker) at a worker's first explanation, `eager` at start, `off` answers 404")
    EXPLAIN_MAX_SIDE: int = variable(1024, "longest side (px) of the explanation's overlay PNG")
    EXPLAIN_SMOOTHGRAD_SAMPLES: int = variable(
        8, "noisy copies per image for saliency explanations of models without convolutions "
        "(one batched pass)")
    CORS_ORIGINS: str | None = variable(
        None, "comma-separated origins allowed to call the JSON endpoints from a browser; "
        "empty disables CORS. No credentials are ever allowed.",
        shown="`*`; with `AUTH=keys`, none")
    TRUST_PROXY: bool = variable(
        False, "trust one proxy hop's `X-Forwarded-For/-Proto/-Host` (set `true` behind nginx)")
    LOG_LEVEL: str = variable("INFO", "application and gunicorn log level")
    LOG_FORMAT: str = variable(
        "text", "`json`: the app's log and gunicorn's access log as one JSON object per line "
        "on stdout ([Logs and monitoring](operations.md#logs))")
    PREDICTION_LOG: str = variable(
        "off", "`stdout` or a file path: a JSON line per sampled prediction")
    PREDICTION_LOG_SAMPLE: float = variable(1.0, "the share of predictions logged, 0.0-1.0")
    OTEL_EXPORTER_OTLP_ENDPOINT: str = variable(
        "", "OpenTelemetry tracing: the OTLP/HTTP collector every request's trace goes to, e.g. "
        "`http://collector:4318`; the SDK reads the other `OTEL_*` variables "
        "([Tracing](operations.md#tracing))", shown="unset (tracing off)")
    EVENTS_URL: str = variable(
        "", "an HTTP sink each sampled inference is sent to as CloudEvents, as KServe's logger "
        "sends them ([Inference events](operations.md#inference-events))",
        shown="unset (off)")
    EVENTS_MODE: str = variable("binary", "the CloudEvents HTTP mode: `binary` or `structured`")
    EVENTS_SAMPLE: float = variable(1.0, "the share of inferences sent as events, 0.0-1.0")
    EVENTS_INCLUDE: str = variable(
        "both", "the events per inference: `request`, `response` or `both`")
    EVENTS_INCLUDE_IMAGES: bool = variable(
        False, "send uploads' bytes in request events (else their sha256, size and summary)")
    DRIFT_REFERENCE: int = variable(
        0, "drift: a model version's reference, compared with its latest `DRIFT_WINDOW` "
        "rows by PSI, is its shipped `<stem>.drift_reference.json`, else its examples (at "
        "most N), else the first N rows it answers ([Drift](operations.md#drift)); `0` off")
    DRIFT_WINDOW: int = variable(500, "drift: the latest rows compared with the reference")
    SELF_CHECK: str = variable(
        "refuse", "at load, run the card's examples that name their label: `refuse` to serve a "
        "model that gets one wrong (the message names the scaling that gets all right), "
        "`warn`, or `off`")
    CALIBRATE: str = variable(
        "auto", "at load, a model's labelled examples folder (`models/<stem>.examples/<label>/`, "
        "`models/<name>/examples/<label>/`) picks the preprocessing its card leaves open: "
        "`auto`, or `off` to keep the default choice (the examples still check it, as "
        "`SELF_CHECK` says) ([Calibration](models.md#calibration-from-labelled-examples))")
    RUNTIME: str = variable(
        "auto", "what runs each model's forward pass ([CPU runtimes]"
        "(models.md#cpu-runtimes-tensorflow-onnx-runtime-openvino)): `auto` converts it "
        "to ONNX Runtime and OpenVINO, keeps those that give Keras' answers, times them "
        "beside TensorFlow and serves the fastest; `tensorflow`, `onnxruntime` or `openvino` "
        "forces one (a model it cannot serve is refused, naming why)")
    RUNTIME_PRECISION: str = variable(
        "f32", "`bf16`: OpenVINO computes in bfloat16 where the CPU has it (AVX-512 BF16, "
        "AMX), gated by top-1 agreement instead of the 1e-4 bound; elsewhere f32")
    RUNTIME_PARITY: str = variable(
        "refuse", "`warn`: serve a forced `RUNTIME` even when its answers miss Keras' (logged)")
    RUNTIME_CACHE_DIR: Path | None = variable(
        DEFAULT_RUNTIME_CACHE, "converted models and their timings, per model file's sha256 "
        "and library versions, shared by the workers and kept across restarts; empty: convert "
        "at every load", shown="`~/.cache/h5serve/runtimes` (image: `/var/cache/h5serve`)")
    RUNTIME_TIMING_SECONDS: float = variable(
        1.0, "how long `auto` times each runtime at batch 1 and at batch 8 (at most "
        "`MAX_BATCH_SIZE`; less for a model so slow that a call would not fit), once per model "
        "file and host: the figures are cached")
    GRPC_BIND: str = variable(
        "", "`host:port` of the gRPC door (KServe V2, TF Serving, health) in every worker, "
        "e.g. `0.0.0.0:8501`; compose sets it, nginx serves it with TLS on 8500",
        shown="unset (off)")
    AUTH: str = variable(
        "off", "`keys`: every model endpoint needs an API key ([Access control]"
        "(operations.md#access-control-api-keys))")
    API_KEYS_FILE: Path | None = variable(
        None, "the keys file (`scripts/api-keys.sh` writes `secrets/api-keys`, so `AUTH=keys` "
        "alone works locally; compose mounts `secrets/`)",
        shown="`secrets/api-keys` if it exists")
    H5SERVE_STATE_DIR: Path | None = variable(
        None, "the folder the workers of one gunicorn master share (models unloaded by a "
        "repository request); unset: each process keeps its own",
        shown="a fresh one per gunicorn master")

    def validate(self) -> None:
        """Reject values that would make the service misbehave later."""
        validate(self)

    @property
    def cors_origins(self) -> list[str]:
        """CORS_ORIGINS as a list; empty means cross-origin requests are not allowed. Left
        unset, any origin may call an open service, and none a service with keys."""
        if self.CORS_ORIGINS is None:
            return ["*"] if self.AUTH == "off" else []
        return [o.strip() for o in self.CORS_ORIGINS.split(",") if o.strip()]

    @property
    def keys_file(self) -> Path | None:
        """API_KEYS_FILE, else secrets/api-keys when it exists (AUTH=keys alone, locally)."""
        if self.API_KEYS_FILE is not None:
            return self.API_KEYS_FILE
        return DEFAULT_KEYS_FILE if DEFAULT_KEYS_FILE.exists() else None
