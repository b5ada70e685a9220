"""The API for scripts: create, read and end live sessions, watch links, and server-sent
events of a session."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web

from relay import tokens
from relay.errors import HostRefused, RelayError, StoreUnavailable
from relay.events import iso
from relay.http.errors import error, error_from
from relay.http.keys import MANAGER, SETTINGS, STORE, STREAMS_CLOSE
from relay.sessions.hosts import url_allowed
from relay.sessions.options import parse_live_options

SSE_KEEPALIVE_S = 15.0
LEAVE_CHECK_S = 0.5  # how soon a listener that left is let go (its Redis subscription with it)
FLUSH_S = 0.5  # when the relay stops: for an outcome just published to reach the stream


async def create_live(request: web.Request) -> web.Response:
    settings, manager = request.app[SETTINGS], request.app[MANAGER]
    try:
        # Read as UTF-8 whatever charset the header names (JSON is UTF-8; a bogus charset
        # must not reach a decoder), and refuse nesting deeper than the parser takes.
        body = json.loads((await request.read()).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return error(400, "the request body must be JSON (UTF-8)")
    try:
        options = parse_live_options(body, settings.live_timeout_ms)
        # A script names its browser here (the CDP endpoint's browsers are the relay's own).
        if not url_allowed(options.browser_ws_endpoint, settings.allowed_hosts):
            raise HostRefused("browserWSEndpoint's host is not in RELAY_ALLOWED_HOSTS")
        session, token = await manager.create(options)
    except RelayError as exc:
        return error_from(exc)
    return web.json_response(
        {
            "id": session.id,
            "liveURL": manager.live_url(token),
            "expiresAt": session.state()["expiresAt"],
        },
        status=201,
    )


async def _state(request: web.Request) -> dict[str, Any] | None:
    live_id = request.match_info["id"]
    if not tokens.looks_like_id(live_id):
        return None
    session = request.app[MANAGER].sessions.get(live_id)
    if session is not None:
        return session.state()
    return await request.app[STORE].get_state(live_id)


async def get_live(request: web.Request) -> web.Response:
    state = await _state(request)
    if state is None:
        return error(404, "no such live session")
    return web.json_response(state)


async def delete_live(request: web.Request) -> web.Response:
    session = request.app[MANAGER].sessions.get(request.match_info["id"])
    if session is not None:
        await session.end("cancelled")
    state = await _state(request)
    if state is None:
        return error(404, "no such live session")
    return web.json_response(state)


async def create_watch_link(request: web.Request) -> web.Response:
    manager = request.app[MANAGER]
    session = manager.sessions.get(request.match_info["id"])
    if session is None or session.ended:
        state = await _state(request)
        if state is None:
            return error(404, "no such live session")
        return error(409, "the live session has ended")
    try:
        url, expires_at = manager.watch_link(session)
    except RelayError as exc:
        return error_from(exc)
    return web.json_response({"watchURL": url, "expiresAt": iso(expires_at)}, status=201)


async def live_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events of a session. The subscription is made before the answer starts (so
    an unreachable store is a 503), and ends as soon as the listener leaves (aiohttp does not
    cancel a handler whose client went away: a watcher notices it) or the store goes away
    (the stream ends; the listener reconnects after ``retry``)."""
    if await _state(request) is None:
        return error(404, "no such live session")
    live_id = request.match_info["id"]
    async with request.app[STORE].events(live_id) as stream:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")

        async def pump() -> None:
            async for event in stream:
                await response.write(event.sse())

        async def watch() -> None:
            """Until the listener leaves or the relay stops; a keepalive now and then."""
            quiet_s = 0.0
            closing = request.app[STREAMS_CLOSE]
            while request.transport is not None and not request.transport.is_closing():
                if closing.is_set():  # the listener reconnects to another relay
                    await asyncio.sleep(FLUSH_S)
                    return
                await asyncio.sleep(LEAVE_CHECK_S)
                quiet_s += LEAVE_CHECK_S
                if quiet_s >= SSE_KEEPALIVE_S:
                    quiet_s = 0.0
                    await response.write(b": keepalive\n\n")

        tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(watch())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            gone = (ConnectionResetError, aiohttp.ClientConnectionResetError, StoreUnavailable)
            if isinstance(result, BaseException) and not isinstance(
                result, (asyncio.CancelledError, *gone)
            ):
                raise result
    return response
