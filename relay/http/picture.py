"""The page's picture while the viewer's video connects.

A WebRTC connection takes a few hundred milliseconds before its first frame (the offer, the
answer, ICE, DTLS, the first keyframe); a picture of the page takes one request. It is the
video's poster until the video has a frame, so the person starts reading at once: a link's
page has it in its HTML (``viewer_page``), asked for as the page is parsed; a reloaded tab
asks first thing, with its credential (``early.js``). It is the newest screencast frame
exactly as Chromium sent it: nothing is decoded or encoded for it. The same link or
credential that may connect may ask; asking spends nothing.
"""

from __future__ import annotations

from aiohttp import web

from relay.errors import SessionGone, ViewerRefused
from relay.http.keys import MANAGER
from relay.http.viewer import LINK_REFUSED, credential_of, operator_of, viewer_error
from relay.sessions.session import LiveSession

__all__ = ["link_picture", "viewer_picture"]

# The viewer page asks as it starts, the screencast started when the page was served: its
# first frame is usually on its way. Past this, the video is as near as the picture.
PICTURE_WAIT_S = 1.5
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}


async def _picture(session: LiveSession) -> web.Response:
    picture = await session.page.picture(PICTURE_WAIT_S)
    if picture is None:
        return web.Response(status=204, headers={"Cache-Control": "no-store"})
    data, fmt = picture
    return web.Response(
        body=data,
        content_type=CONTENT_TYPES[fmt],
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def link_picture(request: web.Request) -> web.Response:
    """The picture for a link's viewer (a link an offer could still spend)."""
    session = request.app[MANAGER].link_session(request.match_info["token"], operator_of(request))
    if session is None:
        return web.Response(status=404, text=LINK_REFUSED)
    return await _picture(session)


async def viewer_picture(request: web.Request) -> web.Response:
    """The picture for a viewer coming back (its credential): a reloaded tab."""
    try:
        session, _spectator = request.app[MANAGER].viewer_session(
            request.match_info["viewer"], credential_of(request)
        )
    except (ViewerRefused, SessionGone) as exc:
        return viewer_error(exc)
    return await _picture(session)
