"""What exists only because h5serve is a web service: the app factory and its wiring.

The upload page, in-memory request bodies, and the rendering of every error as JSON or
HTML. It may import everything below it: `app.protocols`, `app.runtime`, `app.config`.
"""
