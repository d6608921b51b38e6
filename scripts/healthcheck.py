"""Container healthcheck: exit 0 when the app on this host answers /readyz with 200.

A script rather than `python -c "..."`, because podman's Docker API splits an exec-form
compose healthcheck's arguments on spaces. Port from BIND (gunicorn's), default 5000.
"""

import os
import sys
import urllib.request

port = os.environ.get("BIND", "0.0.0.0:5000").rsplit(":", 1)[-1]
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError:
    sys.exit(1)
