"""Canary and shadow roll-outs that decide by themselves, from live evidence.

A model folder's card names a candidate version (`"rollout"`, app.runtime.canary.policy).
While it is undecided the candidate is served beside the current version: in shadow mode
it never answers, a sample of requests is mirrored to it after the answer is sent; in
canary mode a sticky share of clients is answered by it and its answers are re-run on the
current version. Both give the same evidence (app.runtime.canary.evidence), pooled by
every gunicorn worker through the shared state folder (app.runtime.canary.store), and the
rules (app.runtime.canary.rules) promote or roll back once, for every worker alike
(app.runtime.canary.control). Nothing is imported here: the gunicorn master reads the
cards' policies (app.runtime.canary.policy) and must not load the rest.
"""
