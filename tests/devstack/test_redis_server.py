"""The optional Redis fixture: a memory-only server, or a skip naming the missing package."""

from __future__ import annotations

from urllib.parse import urlsplit

from airline_devstack.redis_server import redis_ping


def test_redis_url_answers_ping(redis_url: str) -> None:
    port = urlsplit(redis_url).port
    assert port is not None and redis_ping(port)
