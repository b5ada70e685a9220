"""The API for scripts: create, read and end live sessions, watch links, and server-sent
events of a session."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web

from relay import tokens
from relay.errors import RelayError
from relay.events import iso
from relay.http.errors import error, error_from
from relay.http.keys import MANAGER, SETTINGS, STORE
from relay.sessions.options import parse_live_options

SSE_KEEPALIVE_S = 15.0


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
    if await _state(request) is None:
        return error(404, "no such live session")
    live_id = request.match_info["id"]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)

    async def keepalive() -> None:
        while True:
            await asyncio.sleep(SSE_KEEPALIVE_S)
            await response.write(b": keepalive\n\n")

    pinger = asyncio.create_task(keepalive())
    try:
        async with request.app[STORE].events(live_id) as stream:
            await response.write(b"retry: 3000\n\n")
            async for event in stream:
                await response.write(event.sse())
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass  # the listener left
    finally:
        pinger.cancel()
    return response
