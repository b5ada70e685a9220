"""The person's side: the viewer page, and WHEP for its peer connection (offer with the
one-time link, reconnect and goodbye with the viewer's credential, Done and Can't complete)."""

from __future__ import annotations

import json
import logging
import time
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

from relay import metrics
from relay.control.protocol import MAX_REASON_CHARS
from relay.errors import (
    CDPClosed,
    CDPError,
    LinkRefused,
    OfferError,
    OptionsError,
    SessionGone,
    ViewerRefused,
)
from relay.events import Reason
from relay.http.errors import error, error_from
from relay.http.keys import MANAGER, OPERATORS, SETTINGS, VIEWER_PAGE
from relay.sessions.operators import COOKIE_NAME
from relay.webrtc.ice import IceError, parse_ice_errors
from relay.webrtc.sdp import (
    MAX_SDP_BYTES,
    MAX_TRICKLE_BYTES,
    SDP_CONTENT_TYPE,
    TRICKLE_CONTENT_TYPE,
    ice_credentials,
    parse_trickle,
)

log = logging.getLogger(__name__)
ICE_ERRORS_HEADER = "X-Relay-Ice-Errors"
ICE_ERROR_LOG_S = 60.0
_logged_ice_errors: dict[IceError, float] = {}
LINK_REFUSED = "This link is not valid: links work once and expire.\n"
MAX_FAIL_BODY_BYTES = 4096


def parse_fail_reason(raw: bytes) -> str | None:
    """The person's reason from a Can't complete body: none, or ``{"reason": "text"}``."""
    if not raw.strip():
        return None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise OptionsError('the body must be JSON: {"reason": "..."}') from None
    if not isinstance(body, dict) or not set(body) <= {"reason"}:
        raise OptionsError('the body must be {"reason": "..."}')
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise OptionsError(f"reason must be a string of at most {MAX_REASON_CHARS} characters")
    return reason.strip() or None


async def viewer_page(request: web.Request) -> web.Response:
    # The same page for any token, its own in it as the address has it: it tells nothing
    # about the link until the viewer connects.
    token = request.match_info.get("token", "")
    request.app[MANAGER].warm_up(token)
    page = request.app[VIEWER_PAGE]
    csp = page.csp(request.app[SETTINGS].frame_ancestors)
    return web.Response(
        text=page.for_link(token),
        content_type="text/html",
        headers={"Content-Security-Policy": csp},
    )


async def _read_offer(request: web.Request) -> str:
    if request.content_type != SDP_CONTENT_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"send the offer as {SDP_CONTENT_TYPE}\n")
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_SDP_BYTES, actual_size=request.content_length
        )
    raw = await request.content.read(MAX_SDP_BYTES + 1)
    if len(raw) > MAX_SDP_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_SDP_BYTES, actual_size=len(raw))
    return raw.decode("utf-8", "replace")


def _answer(
    request: web.Request, viewer_id: str, answer: str, credential: str | None = None
) -> web.Response:
    """A WHEP answer: the resource (``Location``), its ICE session (``ETag``: what a trickle
    ``PATCH`` names in ``If-Match``), the ICE servers (``Link``), and for a new viewer its
    credential for everything after."""
    headers = CIMultiDict({"Location": _session_url(request, viewer_id), "ETag": _etag(answer)})
    if credential is not None:
        headers["X-Relay-Credential"] = credential
    for server in request.app[SETTINGS].ice.for_viewer(viewer_id, time.time()):
        for value in server.link_values():
            headers.add("Link", value)
    return web.Response(status=201, text=answer, content_type=SDP_CONTENT_TYPE, headers=headers)


def _etag(answer: str) -> str:
    return f'"{ice_credentials(answer)[0]}"'


def _session_url(request: web.Request, viewer_id: str) -> str:
    # Under the public base URL's path, so the relay works behind a path prefix.
    prefix = urlsplit(request.app[SETTINGS].base_url).path.rstrip("/")
    return f"{prefix}/live/session/{viewer_id}"


def _ice_config(request: web.Request, who: str) -> web.Response:
    servers = request.app[SETTINGS].ice.for_viewer(who, time.time())
    return web.json_response({"iceServers": [s.to_browser() for s in servers]})


async def viewer_config(request: web.Request) -> web.Response:
    """The ICE servers for a link's first offer (TURN credentials of its own): only for a link
    that an offer could still spend, so the page itself never carries them."""
    session = request.app[MANAGER].link_session(request.match_info["token"], operator_of(request))
    if session is None:
        return web.Response(status=404, text=LINK_REFUSED)
    return _ice_config(request, session.id)


async def reconnect_config(request: web.Request) -> web.Response:
    """Fresh ICE servers for a viewer's reconnection (its credential): minted credentials
    expire, a session may outlive them."""
    viewer_id = request.match_info["viewer"]
    try:
        request.app[MANAGER].viewer_session(viewer_id, credential_of(request))
    except (ViewerRefused, SessionGone) as exc:
        return viewer_error(exc)
    return _ice_config(request, viewer_id)


def _log_ice_errors(request: web.Request, viewer_id: str) -> None:
    """What the viewer's browser reported of its STUN/TURN servers while gathering (a 401: its
    TURN credentials were refused): the relay cannot see it otherwise. One line per problem
    and minute."""
    raw = request.headers.get(ICE_ERRORS_HEADER, "")
    now = time.monotonic()
    for problem in parse_ice_errors(raw[:2048]):
        metrics.VIEWER_ICE_ERRORS.labels(str(problem.code)).inc()
        if now - _logged_ice_errors.get(problem, -1e9) < ICE_ERROR_LOG_S:
            continue
        if len(_logged_ice_errors) > 256:
            _logged_ice_errors.clear()
        _logged_ice_errors[problem] = now
        # A refused credential needs the operator; an unreachable server is often one of
        # several addresses or transports the browser tried.
        level = logging.WARNING if problem.code == 401 else logging.INFO
        log.log(level, "viewer %s: %s", viewer_id, problem.describe())


async def whep_offer(request: web.Request) -> web.Response:
    offer = await _read_offer(request)
    counted = metrics.WHEP_OFFERS.labels
    try:
        _session, viewer_id, credential, answer = await request.app[MANAGER].redeem(
            request.match_info["token"], offer, operator_of(request)
        )
    except (LinkRefused, SessionGone):
        counted("first", "refused").inc()
        return web.Response(status=404, text=LINK_REFUSED)
    except OfferError as exc:
        counted("first", "bad_offer").inc()
        return web.Response(status=400, text=f"{exc}\n")
    except (CDPClosed, CDPError):
        counted("first", "unavailable").inc()
        return web.Response(status=503, text="the page cannot be shown right now\n")
    counted("first", "answered").inc()
    _log_ice_errors(request, viewer_id)
    return _answer(request, viewer_id, answer, credential)


def operator_of(request: web.Request) -> str | None:
    """Who is signed in to the console in the viewer's browser (a link an operator took works
    for them alone)."""
    return request.app[OPERATORS].check(request.cookies.get(COOKIE_NAME))


def credential_of(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else ""


def viewer_error(exc: Exception) -> web.Response:
    if isinstance(exc, SessionGone):
        return web.json_response({"ended": True, "reason": exc.reason}, status=410)
    return web.Response(status=404, text="no such viewer session\n")


async def whep_reconnect(request: web.Request) -> web.Response:
    offer = await _read_offer(request)
    viewer_id = request.match_info["viewer"]
    counted = metrics.WHEP_OFFERS.labels
    try:
        answer = await request.app[MANAGER].reconnect(viewer_id, credential_of(request), offer)
    except (ViewerRefused, SessionGone) as exc:
        counted("reconnect", "refused").inc()
        return viewer_error(exc)
    except OfferError as exc:
        counted("reconnect", "bad_offer").inc()
        return web.Response(status=400, text=f"{exc}\n")
    except (CDPClosed, CDPError):
        counted("reconnect", "unavailable").inc()
        return web.Response(status=503, text="the page cannot be shown right now\n")
    counted("reconnect", "answered").inc()
    _log_ice_errors(request, viewer_id)
    return _answer(request, viewer_id, answer)


async def whep_patch(request: web.Request) -> web.Response:
    """WHEP trickle: the viewer's candidates, as an SDP fragment (RFC 8840); 204 once added.
    An ICE restart (``If-Match: *``) is not supported: the viewer posts a new offer."""
    if request.content_type != TRICKLE_CONTENT_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"send candidates as {TRICKLE_CONTENT_TYPE}\n")
    if request.headers.get("If-Match", "").strip() == "*":
        return web.Response(
            status=501, text="ICE restart is not supported: post a new offer to {resource}/whep\n"
        )
    raw = await request.content.read(MAX_TRICKLE_BYTES + 1)
    if len(raw) > MAX_TRICKLE_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_TRICKLE_BYTES, actual_size=len(raw))
    try:
        fragment = parse_trickle(raw.decode("utf-8", "replace"))
        await request.app[MANAGER].trickle(
            request.match_info["viewer"], credential_of(request), fragment
        )
    except (ViewerRefused, SessionGone) as exc:
        return viewer_error(exc)
    except OfferError as exc:
        return web.Response(status=400, text=f"{exc}\n")
    return web.Response(status=204)


async def _viewer_ends(
    request: web.Request,
    credential: str,
    reason: Reason | Literal["leaving"],
    detail: str | None = None,
) -> web.Response:
    """A viewer ends the session with ``reason``, or its tab is ``leaving`` (closing or
    reloading: the session waits the reload window). A watcher can only leave itself."""
    try:
        session, spectator = request.app[MANAGER].viewer_session(
            request.match_info["viewer"], credential
        )
    except (ViewerRefused, SessionGone) as exc:
        return viewer_error(exc)
    if spectator is not None:
        if reason not in ("closed", "leaving"):
            return web.Response(status=403, text="a watcher cannot end the session\n")
        await session.watchers.leave(spectator)  # only this watcher goes
        return web.json_response({"ended": False, "left": True})
    if reason == "leaving":
        session.viewer_leaving()
        return web.json_response({"ended": False, "leaving": True})
    await session.end(reason, detail)
    return web.json_response({"ended": True, "reason": session.reason})


async def whep_delete(request: web.Request) -> web.Response:
    return await _viewer_ends(request, credential_of(request), "closed")


async def viewer_beacon(request: web.Request) -> web.Response:
    """The viewer's tab is going away: closing, or reloading (``LiveSession.viewer_leaving``).
    ``navigator.sendBeacon`` cannot set headers, so the credential is the body."""
    credential = (await request.content.read(128)).decode("ascii", "replace").strip()
    return await _viewer_ends(request, credential, "leaving")


async def viewer_done(request: web.Request) -> web.Response:
    return await _viewer_ends(request, credential_of(request), "done")


async def viewer_failed(request: web.Request) -> web.Response:
    """The person pressed "Can't complete", and may say why: ``{"reason": "..."}`` (optional,
    at most 500 characters), delivered as ``detail`` with ``liveComplete``."""
    raw = await request.content.read(MAX_FAIL_BODY_BYTES + 1)
    if len(raw) > MAX_FAIL_BODY_BYTES:
        return error(413, "the body is too large")
    try:
        reason = parse_fail_reason(raw)
    except OptionsError as exc:
        return error_from(exc)
    return await _viewer_ends(request, credential_of(request), "failed", reason)
