"""The HTTP doors: the seed JSON API, raw pixel rows, explanations, TF Serving REST, the
Open Inference Protocol (V2) REST and its repository extension, OpenAPI.

Each blueprint parses its wire format into the data plane's types (app.runtime.dataplane)
and its answers and errors back into that protocol's JSON.
"""
