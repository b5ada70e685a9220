"""The application's shared objects, typed (``web.AppKey``)."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from relay.browser.kept import KeptBrowsers
from relay.browser.pool import BrowserPool
from relay.cluster import ClusterNode
from relay.config import Settings
from relay.http.viewer_page import ViewerPage
from relay.sessions.manager import LiveManager
from relay.sessions.operators import Operators
from relay.store.base import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
MANAGER = web.AppKey("manager", LiveManager)
VIEWER_PAGE = web.AppKey("viewer_page", ViewerPage)  # index.html as served
POOL = web.AppKey("pool", BrowserPool)
KEPT = web.AppKey("kept", KeptBrowsers)  # managed browsers that outlive a connection
CDP_CLIENTS = web.AppKey("cdp_clients", set[web.WebSocketResponse])  # closed on shutdown
DRAINING = web.AppKey("draining", asyncio.Event)  # set once the relay was told to stop
# Set once this relay's sessions are ended or handed over: event streams still open close (a
# listener reconnects to another relay, which has the outcome or the session).
STREAMS_CLOSE = web.AppKey("streams_close", asyncio.Event)
HTTP = web.AppKey("http", aiohttp.ClientSession)  # the relay's own client (CDP, forwarding)
CLUSTER = web.AppKey("cluster", ClusterNode)  # with Redis: this relay as a node of a cluster
OPERATORS = web.AppKey("operators", Operators)  # of the console (RELAY_OPERATOR_KEYS)
