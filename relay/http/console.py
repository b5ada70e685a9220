"""The operator console (``/console``): open requests (pending and live sessions, every relay's)
with their instructions, age, time left, status and page title, updating as they change; "Take"
gives the operator a fresh one-time link of their own, and the link the request had stops
working.

Operators sign in with their key (``RELAY_OPERATOR_KEYS``) and get a signed cookie (HttpOnly,
SameSite=Strict, Secure behind HTTPS). Every action checks that the request comes from this
origin (``Origin`` / ``Sec-Fetch-Site``) and carries the sign-in's CSRF token. Taking is atomic
across relays: the take runs on the relay that holds the session (``relay.http.routing``) and
spends the old link with one ``GETDEL``, so of two operators racing, one gets the link and the
other sees who took it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from relay import tokens
from relay.errors import LinkRefused, StoreUnavailable
from relay.http.api import LEAVE_CHECK_S
from relay.http.errors import error
from relay.http.keys import MANAGER, OPERATORS, SETTINGS, STORE, STREAMS_CLOSE
from relay.sessions.operators import COOKIE_NAME, SIGN_IN_S

__all__ = ["console_page", "events", "me", "requests_list", "sign_in", "sign_out", "take"]
FAILED_SIGN_IN_DELAY_S = 0.5  # each wrong key costs a guesser this long
EVENTS_KEEPALIVE_S = 15.0
MAX_SIGN_IN_BYTES = 1024


def _origin_ok(request: web.Request) -> bool:
    """The request comes from a page of this relay (or from no page at all: no Origin)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    ours = {request.host, urlsplit(request.app[SETTINGS].base_url).netloc}
    return urlsplit(origin).netloc in ours


def _operator(request: web.Request) -> tuple[str, str] | None:
    """(name, cookie) of the signed-in operator."""
    cookie = request.cookies.get(COOKIE_NAME)
    name = request.app[OPERATORS].check(cookie)
    return None if name is None or cookie is None else (name, cookie)


def _acting(request: web.Request) -> tuple[str, web.Response | None]:
    """The operator behind an action (POST), or the refusal to answer with."""
    who = _operator(request)
    if who is None:
        return "", error(401, "sign in first")
    if not _origin_ok(request):
        return "", error(403, "not from this relay's console")
    if not request.app[OPERATORS].csrf_ok(who[1], request.headers.get("X-CSRF-Token")):
        return "", error(403, "missing or wrong CSRF token: reload the console")
    return who[0], None


def _enabled(request: web.Request) -> None:
    if not request.app[OPERATORS]:
        raise web.HTTPNotFound(text="no console: RELAY_OPERATOR_KEYS is not set\n")


async def console_page(request: web.Request) -> web.Response:
    _enabled(request)
    html = (request.app[SETTINGS].web_dir / "console.html").read_text()
    return web.Response(
        text=html,
        content_type="text/html",
        headers={
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
            ),
            "Cache-Control": "no-store",
        },
    )


async def sign_in(request: web.Request) -> web.Response:
    _enabled(request)
    if not _origin_ok(request):
        return error(403, "not from this relay's console")
    raw = await request.content.read(MAX_SIGN_IN_BYTES + 1)
    try:
        body = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_SIGN_IN_BYTES else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        body = None
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str):
        return error(400, 'send {"key": "..."}')
    operators = request.app[OPERATORS]
    name = operators.sign_in(key)
    if name is None:
        await asyncio.sleep(FAILED_SIGN_IN_DELAY_S)
        return error(401, "unknown operator key")
    cookie = operators.cookie(name)
    response = web.json_response({"name": name, "csrf": operators.csrf(cookie)})
    response.set_cookie(
        COOKIE_NAME, cookie, max_age=SIGN_IN_S, path="/", httponly=True, samesite="Strict",
        secure=request.app[SETTINGS].base_url.startswith("https://"),
    )  # fmt: skip
    return response


async def sign_out(request: web.Request) -> web.Response:
    _enabled(request)
    _name, refused = _acting(request)
    if refused is not None:
        return refused
    response = web.json_response({"signedOut": True})
    response.del_cookie(COOKIE_NAME, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    _enabled(request)
    who = _operator(request)
    if who is None:
        return error(401, "sign in first")
    return web.json_response({"name": who[0], "csrf": request.app[OPERATORS].csrf(who[1])})


async def _requests(app: web.Application) -> list[dict[str, Any]]:
    """Open requests, oldest first: what an operator needs to pick one."""
    keep = ("id", "status", "instructions", "createdAt", "endsAt", "title", "takenBy",
            "viewerCount", "interactable")  # fmt: skip
    states = await app[STORE].open_states()
    return sorted(
        ({k: s.get(k) for k in keep} for s in states), key=lambda s: str(s.get("createdAt"))
    )


async def requests_list(request: web.Request) -> web.Response:
    _enabled(request)
    if _operator(request) is None:
        return error(401, "sign in first")
    return web.json_response({"requests": await _requests(request.app), "now": time.time()})


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent ``requests`` events: the whole list, now and whenever it changes."""
    _enabled(request)
    if _operator(request) is None:
        return error(401, "sign in first")
    async with request.app[STORE].changes() as changes:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                     "X-Accel-Buffering": "no"}
        )  # fmt: skip
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        closing = request.app[STREAMS_CLOSE]
        waiting = asyncio.ensure_future(anext(changes))
        fresh, quiet_s = True, 0.0
        try:
            while not closing.is_set() and request.transport is not None:
                if request.transport.is_closing():
                    break  # the operator left: let the subscription go at once
                if fresh:
                    listed = {"requests": await _requests(request.app), "now": time.time()}
                    await response.write(
                        f"event: requests\ndata: {json.dumps(listed)}\n\n".encode()
                    )
                    fresh, quiet_s = False, 0.0
                done, _ = await asyncio.wait([waiting], timeout=LEAVE_CHECK_S)
                if done:
                    waiting.result()
                    await asyncio.sleep(0.1)  # a burst of changes: one list
                    waiting, fresh = asyncio.ensure_future(anext(changes)), True
                    continue
                quiet_s += LEAVE_CHECK_S
                if quiet_s >= EVENTS_KEEPALIVE_S:
                    await response.write(b": keepalive\n\n")
                    quiet_s = 0.0
        except (ConnectionResetError, aiohttp.ClientConnectionResetError, StoreUnavailable):
            pass  # the operator left, or Redis went away: the page reconnects
        finally:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
    return response


async def take(request: web.Request) -> web.Response:
    """``POST /console/api/requests/{id}/take``: runs on the relay holding the session."""
    _enabled(request)
    name, refused = _acting(request)
    if refused is not None:
        return refused
    live_id = request.match_info["id"]
    session = request.app[MANAGER].sessions.get(live_id) if tokens.looks_like_id(live_id) else None
    if session is None:
        return error(404, "no such open request")
    try:
        url = await request.app[MANAGER].take(session, name)
    except LinkRefused:
        taken = session.operator
        why = f"taken by {taken}" if taken else "already opened (someone is on it), or ended"
        return web.json_response({"error": why, "takenBy": taken}, status=409)
    return web.json_response({"liveURL": url, "takenBy": name})
