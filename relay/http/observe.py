"""What an operator's tools ask: ``/healthz`` (the process serves), ``/readyz`` (send it
work), ``/metrics`` (Prometheus text).

``/readyz`` is 503 while the relay drains (it was told to stop: sessions are ending, a load
balancer should send new work elsewhere), when the configured Redis does not answer within
``READY_REDIS_TIMEOUT_S``, or when no Chromium can be launched for the CDP endpoint. Its body
says which.

``/metrics`` gives the counters of ``relay.metrics`` and, read at each scrape, what is true now:
sessions by state, viewers, the CDP endpoint's browsers and queue. With API keys set it asks
for one (Prometheus sends it as a bearer token), unless it is served on its own port
(``RELAY_METRICS_PORT``, for a port that only the cluster reaches).
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from relay import metrics
from relay.browser.chromium import find_chromium
from relay.errors import ChromiumNotFound
from relay.http.auth import key_refused
from relay.http.keys import DRAINING, MANAGER, POOL, SETTINGS, STORE
from relay.sessions.lifecycle import Status

__all__ = ["AppCollector", "healthz", "metrics_app", "metrics_text", "readyz"]

READY_REDIS_TIMEOUT_S = 1.0
STATES: tuple[Status, ...] = ("pending", "live", "reconnecting")


async def healthz(request: web.Request) -> web.Response:
    """The process serves requests: a liveness probe (it stays 200 while Redis is down, since
    a restart would not bring Redis back and would end every session here)."""
    return web.json_response({"ok": True, "sessions": len(request.app[MANAGER].sessions)})


async def _redis_ready(app: web.Application) -> str | None:
    if app[SETTINGS].redis_url is None:
        return None
    try:
        async with asyncio.timeout(READY_REDIS_TIMEOUT_S):
            await app[STORE].ping()
    except Exception as exc:  # any failure means: not ready, and the body says why
        return f"Redis does not answer: {type(exc).__name__}"
    return None


def _chromium_ready(app: web.Application) -> str | None:
    try:
        find_chromium(app[SETTINGS].chromium)
    except ChromiumNotFound:
        return "no Chromium to launch for the CDP endpoint (set RELAY_CHROMIUM)"
    return None


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    problems = [
        p
        for p in (
            "draining: this relay is shutting down" if app[DRAINING].is_set() else None,
            await _redis_ready(app),
            _chromium_ready(app),
        )
        if p is not None
    ]
    body = {"ready": not problems, "problems": problems}
    return web.json_response(body, status=503 if problems else 200)


class AppCollector(Collector):
    """Gauges read from one application's live objects at each scrape."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sessions = list(self.app[MANAGER].sessions.values())
        states = Tally(s.status for s in sessions)
        by_state = GaugeMetricFamily(
            "live_relay_sessions", "Live sessions on this relay, by state.", labels=["state"]
        )
        for state in STATES:
            by_state.add_metric([state], states.get(state, 0))
        yield by_state
        viewers = GaugeMetricFamily(
            "live_relay_viewers",
            "Connected viewers: the person with the link (controller) and watchers.",
            labels=["role"],
        )
        viewers.add_metric(["controller"], sum(s.controller.peer is not None for s in sessions))
        viewers.add_metric(["watcher"], sum(s.watchers.count for s in sessions))
        yield viewers
        pool = self.app[POOL]
        browsers = GaugeMetricFamily(
            "live_relay_browsers",
            "Managed browsers of the CDP endpoint: running, and connections queued for one.",
            labels=["state"],
        )
        browsers.add_metric(["running"], pool.running)
        browsers.add_metric(["queued"], pool.waiting)
        yield browsers
        limit = GaugeMetricFamily(
            "live_relay_browsers_limit", "RELAY_MAX_BROWSERS: managed browsers at most."
        )
        limit.add_metric([], pool.size)
        yield limit


def metrics_text(app: web.Application) -> bytes:
    now = CollectorRegistry(auto_describe=True)
    now.register(AppCollector(app))
    return generate_latest(metrics.REGISTRY) + generate_latest(now)


def _response(app: web.Application) -> web.Response:
    response = web.Response(body=metrics_text(app))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def metrics_handler(request: web.Request) -> web.Response:
    if request.app[SETTINGS].metrics_port is not None:
        raise web.HTTPNotFound(text="metrics are served on RELAY_METRICS_PORT\n")
    refused = key_refused(request)
    return refused if refused is not None else _response(request.app)


def metrics_app(main: web.Application) -> web.Application:
    """The application of the metrics port: ``/metrics`` of ``main`` and nothing else."""

    async def handler(_request: web.Request) -> web.Response:
        return _response(main)

    app = web.Application()
    app.router.add_get("/metrics", handler)
    return app
