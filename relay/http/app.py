"""The aiohttp application: routes, shared services, and a server that binds first.

The handlers live beside this module: ``api`` (scripts), ``viewer`` (the person's page and
WHEP), ``cdp_endpoint`` (browserless-compatible CDP), ``auth`` (keys, headers, access log).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp import web

from relay import tokens
from relay.browser.kept import KeptBrowsers
from relay.browser.pool import BrowserPool
from relay.config import Settings
from relay.http import (
    api,
    cdp_endpoint,
    cloudflare,
    console,
    observe,
    openapi,
    picture,
    recordings,
    viewer,
)
from relay.http.auth import AccessLogger, security
from relay.http.cors import cors
from relay.http.errors import store_errors
from relay.http.keys import (
    CDP_CLIENTS,
    CLUSTER,
    DRAINING,
    HTTP,
    KEPT,
    MANAGER,
    OPERATORS,
    POOL,
    SETTINGS,
    STORE,
    STREAMS_CLOSE,
    VIEWER_PAGE,
)
from relay.http.routing import adopt_handler, owned, warming
from relay.http.viewer_page import build_viewer_page
from relay.logs import install_redaction
from relay.sessions.manager import LiveManager
from relay.sessions.operators import Operators
from relay.sessions.trim import tune_allocator
from relay.store import MemoryStore, Store
from relay.webrtc import aioice_compat

__all__ = ["MANAGER", "SETTINGS", "STORE", "RunningServer", "create_app", "start_server"]


async def make_store(settings: Settings) -> Store:
    if settings.redis_url is None:
        return MemoryStore()
    from relay.store.redis import RedisStore

    store = RedisStore(settings.redis_url.value, settings.redis_prefix)
    try:
        await store.ping()
    except Exception as exc:
        await store.close()
        raise RuntimeError(f"cannot reach Redis at RELAY_REDIS_URL: {exc}") from None
    return store


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await make_store(settings)
    http = aiohttp.ClientSession()
    app[STORE], app[HTTP] = store, http
    cluster = None
    if settings.redis_url is not None:  # each relay on a Redis is a node of a cluster
        from relay.cluster import ClusterNode
        from relay.store.cluster import Directory
        from relay.store.redis import RedisStore

        assert isinstance(store, RedisStore)
        directory = Directory(store)
        manager = LiveManager(settings.sessions, store, http, directory, tokens.new_id())
        cluster = ClusterNode(
            manager, directory, settings.internal_url, settings.cluster_secret,
            settings.lease_s, http,
        )  # fmt: skip
        await cluster.start()
        app[CLUSTER] = cluster
    else:
        manager = LiveManager(settings.sessions, store, http)
    app[MANAGER] = manager
    app[POOL] = BrowserPool(settings.max_browsers, settings.max_queued)
    app[KEPT] = KeptBrowsers(app[POOL], settings.browser_timeout_ms / 1000)
    try:
        yield
    finally:
        await app[KEPT].close_all()
        await manager.close()
        if cluster is not None:
            await cluster.close()
        await http.close()
        await store.close()


def create_app(settings: Settings, extra_static: dict[str, Path] | None = None) -> web.Application:
    aioice_compat.install()  # RELAY_ICE_PORT_RANGE and friends (relay.webrtc.network)
    tune_allocator()  # a session's native memory goes back to the system when it ends
    install_redaction()  # no token in any log line, aiohttp's own included
    app = web.Application(middlewares=[cors, security, store_errors], client_max_size=256 * 1024)
    app[SETTINGS] = settings
    app[VIEWER_PAGE] = build_viewer_page(settings)
    app[DRAINING], app[STREAMS_CLOSE] = asyncio.Event(), asyncio.Event()
    app[OPERATORS] = Operators(settings.operator_keys)
    app[CDP_CLIENTS] = set()
    app.on_shutdown.append(cdp_endpoint.close_cdp_clients)
    app.cleanup_ctx.append(_services)
    app.cleanup_ctx.append(recordings.retention)
    app.router.add_get("/healthz", observe.healthz)
    app.router.add_get("/readyz", observe.readyz)
    app.router.add_get("/metrics", observe.metrics_handler)
    for path in ("/", "/chromium", "/chrome"):
        app.router.add_get(path, cdp_endpoint.connect)
    app.router.add_get(cloudflare.PREFIX, cloudflare.connect_new)
    app.router.add_post(cloudflare.PREFIX, cloudflare.create_browser)
    app.router.add_get(cloudflare.PREFIX + "/{browser}", cloudflare.connect_kept)
    app.router.add_get(cloudflare.PREFIX + "/{browser}/json/list", cloudflare.list_targets)
    app.router.add_get("/devtools/browser/{browser}", cdp_endpoint.connect_kept)
    app.router.add_get("/json/version", cdp_endpoint.json_version)
    app.router.add_get("/json/version/", cdp_endpoint.json_version)
    app.router.add_get("/api/openapi.json", openapi.openapi_json)
    app.router.add_post("/api/live", api.create_live)
    # Requests about one session run on the relay that holds it (relay.http.routing).
    app.router.add_get("/api/live/{id}", owned("id", api.get_live))
    app.router.add_delete("/api/live/{id}", owned("id", api.delete_live))
    app.router.add_get("/api/live/{id}/events", api.live_events)  # from the store, anywhere
    app.router.add_post("/api/live/{id}/watchers", owned("id", api.create_watch_link))
    app.router.add_get("/api/live/{id}/recording", recordings.recording)  # a shared folder
    app.router.add_get("/api/live/{id}/timeline", owned("id", recordings.timeline))
    app.router.add_static("/live/assets/", settings.web_dir, append_version=False)
    app.router.add_post("/live/session/{viewer}/whep", owned("viewer", viewer.whep_reconnect))
    app.router.add_delete("/live/session/{viewer}", owned("viewer", viewer.whep_delete))
    app.router.add_patch("/live/session/{viewer}", owned("viewer", viewer.whep_patch))
    app.router.add_post("/live/session/{viewer}/close", owned("viewer", viewer.viewer_beacon))
    app.router.add_post("/live/session/{viewer}/done", owned("viewer", viewer.viewer_done))
    app.router.add_post("/live/session/{viewer}/failed", owned("viewer", viewer.viewer_failed))
    app.router.add_get("/live/session/{viewer}/config", owned("viewer", viewer.reconnect_config))
    app.router.add_get("/live/{token}/config", owned("token", viewer.viewer_config))
    app.router.add_get("/live/{token}/picture", owned("token", picture.link_picture))
    app.router.add_get("/live/session/{viewer}/picture", owned("viewer", picture.viewer_picture))
    app.router.add_get("/live/", viewer.viewer_page)
    app.router.add_get("/live/{token}", warming(viewer.viewer_page))
    app.router.add_post("/live/{token}/whep", owned("token", viewer.whep_offer))
    app.router.add_post("/cluster/adopt/{id}", adopt_handler)
    app.router.add_get("/console", console.console_page)
    app.router.add_post("/console/api/signin", console.sign_in)
    app.router.add_post("/console/api/signout", console.sign_out)
    app.router.add_get("/console/api/me", console.me)
    app.router.add_get("/console/api/requests", console.requests_list)
    app.router.add_get("/console/api/events", console.events)
    app.router.add_post("/console/api/requests/{id}/take", owned("id", console.take))
    for prefix, folder in (extra_static or {}).items():
        app.router.add_static(prefix, folder)
    return app


class RunningServer:
    """A started relay; ``close()`` ends its sessions (reason ``cancelled``) and stops it."""

    def __init__(
        self, runner: web.AppRunner, settings: Settings, metrics: web.AppRunner | None = None
    ) -> None:
        self.runner, self.settings, self.metrics = runner, settings, metrics

    @property
    def app(self) -> web.Application:
        return self.runner.app

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    async def close(self) -> None:
        """Stop: no new work (``/readyz`` 503), every session is handed over to another relay
        of the cluster (its viewers reconnect there) or ends with ``cancelled`` while the
        server still runs, so that event streams and CDP clients get their outcome before
        their connections close; then the server stops, giving open connections at most
        ``RELAY_DRAIN_S``."""
        self.app[DRAINING].set()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.settings.drain_s):
                cluster = self.app.get(CLUSTER)
                if cluster is not None:  # other relays go on with the sessions, if any can
                    await cluster.hand_over_all()
                await self.app[MANAGER].end_all("cancelled")
        self.app[STREAMS_CLOSE].set()
        await self.runner.cleanup()
        if self.metrics is not None:
            await self.metrics.cleanup()


async def start_server(
    settings: Settings, extra_static: dict[str, Path] | None = None
) -> RunningServer:
    """Bind first, so that port 0 resolves before the links' base URL is fixed."""
    settings.check_bind()
    sock = socket.create_server((settings.host, settings.port), reuse_port=False)
    port = sock.getsockname()[1]
    if port != settings.port:
        settings = replace(settings, port=port)
    msock = None
    if settings.metrics_port is not None:
        msock = socket.create_server((settings.host, settings.metrics_port))
        settings = replace(settings, metrics_port=msock.getsockname()[1])
    runner = web.AppRunner(
        create_app(settings, extra_static), access_log_class=AccessLogger, handle_signals=False,
        shutdown_timeout=settings.drain_s,
    )  # fmt: skip
    metrics: web.AppRunner | None = None
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        if msock is not None:
            metrics = web.AppRunner(observe.metrics_app(runner.app), access_log=None)
            await metrics.setup()
            await web.SockSite(metrics, msock).start()
    except BaseException:
        if metrics is not None:
            await metrics.cleanup()
        await runner.cleanup()
        sock.close()
        if msock is not None:
            msock.close()
        raise
    return RunningServer(runner, settings, metrics)
