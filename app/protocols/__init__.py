"""The doors, by transport: `rest/` (Flask blueprints) and `grpc/` (servicers).

Each door only converts: its wire format into the data plane's requests
(app.runtime.dataplane) and the answers and error kinds back, with one status table per
transport (app.protocols.status for HTTP, app.protocols.grpc.calls for gRPC). What both
Open Inference Protocol doors share is app.protocols.v2_codec. A door may import the
runtime and `app.config`/`app.metrics`; never `app.http`.
"""
