"""Clients that post one image without pause until stopped, for the zero-failure tests
(roll-outs on the native stack and on Swarm): every answer and every failure recorded
from the client's side."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests


@dataclass
class Load:
    url: str
    cert: str
    image: bytes
    answers: list[tuple[float, int, str]] = field(default_factory=list)  # time, status, version
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    more: tuple[bytes, ...] = ()  # further images, posted in turn (a roll-out compares them)

    def client(self) -> None:
        session = requests.Session()
        images = (self.image, *self.more)
        sent = 0
        while not self.stop.is_set():
            image, sent = images[sent % len(images)], sent + 1
            try:
                response = session.post(self.url, files={"image": ("image.png", image)},
                                        verify=self.cert, timeout=30)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
                session = requests.Session()
                continue
            self.answers.append((time.monotonic(), response.status_code,
                                 response.headers.get("X-Model-Version", "")))
            if response.status_code != 200:
                self.failures.append(f"{response.status_code} {response.text[:200]}")

    def since(self, moment: float) -> list[tuple[float, int, str]]:
        return [a for a in list(self.answers) if a[0] >= moment]

    @contextmanager
    def running(self, clients: int = 8) -> Iterator[Load]:
        """`clients` threads posting for the duration of the block."""
        threads = [threading.Thread(target=self.client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(60)
