"""The two pipelines live-relay is measured against, as one small server of their own.

- **naive**: the screencast JPEGs decoded with PyAV and converted with ``reformat()`` for every
  viewer, and aiortc's own encoder (libx264 with its defaults) per viewer: what you get by
  following aiortc's examples.
- **jpeg**: the screencast JPEGs forwarded as they are over a WebSocket to a canvas, as
  DevTools-style live viewers do (the newest frame waits if a viewer is still busy).

Both take input as live-relay protocol messages and use the same CDP client, screencast
settings (JPEG quality 70 unless a session asks for another ``quality``, at most 1280 px) and
input dispatch as the relay, so only the video path differs.

    python benchmarks/baselines.py --port 8893
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from relay.browser.cdp import CDPConnection
from relay.control import protocol
from relay.control.input import InputDispatcher, InputTranslator
from relay.video.capture import CaptureOptions, Screencast
from relay.video.frames import VIDEO_CLOCK_HZ, VIDEO_TIME_BASE, FrameHub

PAGES = Path(__file__).resolve().parent / "pages"
OPTIONS = CaptureOptions(quality=70, max_width=1280, max_height=1280)


class RawTrack(MediaStreamTrack):
    """Decoded frames, converted with reformat() per viewer; aiortc encodes them per viewer."""

    kind = "video"

    def __init__(self, hub: FrameHub) -> None:
        super().__init__()
        self.hub = hub
        self.changed = asyncio.Event()
        hub.listen(self.changed.set)
        self.last: Any = None
        self.start: float | None = None
        self.last_pts = -1

    async def recv(self) -> av.VideoFrame:
        while True:
            if self.readyState != "live" or self.hub.closed:
                raise MediaStreamError
            latest = self.hub.latest
            if latest is not None and latest is not self.last:
                break
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 1.0)
            except TimeoutError:
                if self.last is not None:
                    latest = self.last  # keep the stream alive on a static page
                    break
        repeat, self.last = latest is self.last, latest
        frame = latest.frame.reformat(format="yuv420p")
        at = time.monotonic() if repeat else latest.captured_at
        if self.start is None:
            self.start = at
        self.last_pts = max(int((at - self.start) * VIDEO_CLOCK_HZ), self.last_pts + 1)
        frame.pts, frame.time_base = self.last_pts, VIDEO_TIME_BASE
        return frame


class ForwardingScreencast(Screencast):
    """Hands each screencast JPEG to the WebSocket viewers without decoding it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sockets: dict[web.WebSocketResponse, asyncio.Event] = {}
        self.latest: bytes = b""

    def _on_frame(self, params: dict[str, Any]) -> None:
        ack_id = params.get("sessionId")
        if ack_id is not None:
            self.session.notify("Page.screencastFrameAck", {"sessionId": ack_id})
        meta = params.get("metadata") or {}
        if meta.get("deviceWidth"):
            self.view = (round(meta["deviceWidth"]), round(meta["deviceHeight"]))
        self.latest = base64.b64decode(params.get("data", ""))
        for ready in self.sockets.values():
            ready.set()


class Session:
    def __init__(self, mode: str, conn: CDPConnection, cast: Screencast, target: Any) -> None:
        self.mode, self.conn, self.cast, self.target = mode, conn, cast, target
        self.translator = InputTranslator()
        self.peers: list[RTCPeerConnection] = []
        self.dispatchers: list[InputDispatcher] = []  # held, so their tasks end by close()

    def dispatcher(self) -> InputDispatcher:
        self.dispatchers.append(InputDispatcher(self.target, self.translator))
        return self.dispatchers[-1]

    def on_input(self, dispatcher: InputDispatcher, raw: str) -> None:
        try:
            message = protocol.parse(raw)
        except protocol.ProtocolError:
            return
        if isinstance(message, protocol.Ping | protocol.Size | protocol.Done):
            return
        self.translator.viewport = self.cast.view
        if not isinstance(message, protocol.Nav | protocol.Tab):
            dispatcher.push(message)


SESSIONS: dict[str, Session] = {}


async def create(request: web.Request) -> web.Response:
    body = await request.json()
    conn = await CDPConnection.connect(body["browserWSEndpoint"])
    targets = (await conn.send("Target.getTargets"))["targetInfos"]
    target_id = body.get("targetId") or next(t["targetId"] for t in targets if t["type"] == "page")
    target = await conn.attach(target_id)
    await target.send("Page.enable")
    mode = body["mode"]
    options = replace(OPTIONS, quality=int(body.get("quality", OPTIONS.quality)))
    cast: Screencast = (ForwardingScreencast if mode == "jpeg" else Screencast)(target, options)
    await cast.acquire()
    sid = f"s{len(SESSIONS) + 1}"
    SESSIONS[sid] = Session(mode, conn, cast, target)
    return web.json_response({"id": sid, "url": f"/harness.html?mode={mode}&sid={sid}"})


async def whep(request: web.Request) -> web.Response:
    session = SESSIONS[request.match_info["sid"]]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    session.peers.append(pc)
    dispatcher = session.dispatcher()

    @pc.on("datachannel")
    def on_channel(channel: Any) -> None:
        channel.on("message", lambda raw: session.on_input(dispatcher, raw))

    pc.addTrack(RawTrack(session.cast.hub))
    await pc.setRemoteDescription(RTCSessionDescription(await request.text(), "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return web.Response(
        status=201,
        text=pc.localDescription.sdp,
        content_type="application/sdp",
        headers={"Location": f"/naive/{request.match_info['sid']}/whep"},
    )


async def socket(request: web.Request) -> web.WebSocketResponse:
    session = SESSIONS[request.match_info["sid"]]
    cast = session.cast
    assert isinstance(cast, ForwardingScreencast)
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    ready = asyncio.Event()
    if cast.latest:
        ready.set()  # a viewer joining a still page gets the last frame at once
    cast.sockets[ws] = ready
    dispatcher = session.dispatcher()

    async def pump() -> None:
        while not ws.closed:
            await ready.wait()
            ready.clear()
            await ws.send_bytes(cast.latest)  # awaits the socket: a slow viewer skips frames

    sender = asyncio.ensure_future(pump())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                session.on_input(dispatcher, msg.data)
    finally:
        sender.cancel()
        cast.sockets.pop(ws, None)
        session.dispatchers.remove(dispatcher)
        await dispatcher.close()
    return ws


async def harness(request: web.Request) -> web.Response:
    # The benchmark injects measure.js itself, as it does into live-relay's viewer page.
    return web.Response(text=(PAGES / "harness.html").read_text(), content_type="text/html")


async def close_sessions(app: web.Application) -> None:
    """Hang up and close the browser connections, so the process exits without warnings."""
    for session in SESSIONS.values():
        for pc in session.peers:
            await pc.close()
        for dispatcher in session.dispatchers:
            await dispatcher.close()
        await session.conn.close()
    SESSIONS.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8893)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = web.Application()
    app.router.add_post("/sessions", create)
    app.router.add_post("/naive/{sid}/whep", whep)
    app.router.add_get("/jpeg/{sid}/ws", socket)
    app.router.add_get("/harness.html", harness)
    app.router.add_get("/healthz", lambda _: web.Response(text=json.dumps({"ok": True})))
    app.on_cleanup.append(close_sessions)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
