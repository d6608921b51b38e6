"""The gRPC doors: KServe V2 / Triton's GRPCInferenceService, TF Serving's PredictionService
and ModelService, and grpc.health.v1, served in every worker (app.protocols.grpc.server).

Each servicer converts protobuf messages into the data plane's types and back, nothing
else; no module here imports Flask or Werkzeug (tests/test_layers.py keeps it so).
"""
