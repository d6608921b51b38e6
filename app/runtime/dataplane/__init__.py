"""The data plane: what every door (REST, gRPC) asks of the served models, transport-free.

Doors parse their wire format into these types (app.runtime.dataplane.types), call the
DataPlane (infer, explain, metadata, readiness, the repository) inside a Call (the
request's lease on a model version and its metrics), and turn the answers and the
errors (app.runtime.errors) back into their own format. Nothing here knows Flask, gRPC or
HTTP statuses (MLServer's handlers/dataplane.py is the model).
"""

from app.runtime.dataplane.calls import Call
from app.runtime.dataplane.plane import DataPlane

__all__ = ["Call", "DataPlane"]
