# h5serve: the two commands a fresh machine needs are `make run` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test lint train bench bench-endpoints bench-events bench-triton bench-runtimes profile soak

## Serve the bundled model (or $MODEL_PATH) with gunicorn + gevent on http://127.0.0.1:5000
run:
	scripts/bootstrap.sh runtime
	$(BIN)/gunicorn -c gunicorn.conf.py "app:create_app()"

## Install everything the tests need, lint, and run the whole test suite
test:
	scripts/bootstrap.sh dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check .

## Retrain the bundled model from Debian's dataset-fashion-mnist (about 12 minutes on 2 cores)
train:
	scripts/bootstrap.sh dev
	$(BIN)/python scripts/train_fashion_mnist.py

## Benchmark the real stack against the tutorial way (about 5 minutes; writes bench/results/)
bench:
	scripts/bootstrap.sh dev
	$(BIN)/python -m bench.run

## Per-endpoint req/s, p99 and worker CPU per request (about 3 minutes; AGAINST=<commit> for A/B)
bench-endpoints:
	scripts/bootstrap.sh dev
	$(BIN)/python -m bench.endpoints $(if $(AGAINST),--against $(AGAINST))

## Inference events with the sink stopped: p99 against events off, and the drop count (about 2 minutes)
bench-events:
	scripts/bootstrap.sh dev
	$(BIN)/python -m bench.events_sink_down

## h5serve against NVIDIA Triton's core (PyTriton, its own venv) on V2 JSON (about 3 minutes)
bench-triton:
	scripts/bootstrap.sh dev
	scripts/bootstrap.sh triton
	$(BIN)/python -m bench.triton_peer

## TensorFlow, ONNX Runtime and OpenVINO per model, in process and through nginx TLS (about 10 minutes)
bench-runtimes:
	scripts/bootstrap.sh dev
	$(BIN)/python -m bench.runtimes

## Profile: py-spy on one loaded worker, where its Python time goes (about 30 s)
profile:
	scripts/bootstrap.sh dev
	$(BIN)/python -m bench.profile

## Soak: 5 minutes at c=64 through nginx TLS; fails on any error or >= 10 % worker RSS growth
soak:
	scripts/bootstrap.sh dev
	$(BIN)/python -m bench.soak --seconds 300
