"""``Page.startScreencast`` on one target, decoded off the event loop into a ``FrameHub``.

Every frame is acknowledged at once (Chromium sends no more until it is), and only the newest
undecoded frame is kept: while one decode runs, a newer arrival replaces the waiting one, so a
slow consumer drops stale frames and never builds a queue. A frame identical to the last one
(Chromium sends one after every screenshot) is not decoded at all. While frames flow, a
``StillPicture`` adds a sharp picture whenever the page stops moving.

Chromium sends screencast frames at the page's size in CSS pixels, whatever its device scale
factor (a 390x788 phone viewport at DPR 1.62 gives 390x788 frames); while a screenshot is
taken it renders the page at device pixels, and the screencast sends those renderings too
(630x1276, their metadata 631x1277): they are dropped (``StillPicture.shooting``). A frame of
the page's own view during a screenshot is kept: at DPR 1 it is the unchanged page again
(dropped as identical), or the page changing while the picture was taken.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Any

import av

from relay.browser.cdp import CDPSession
from relay.errors import CDPClosed, CDPError, DecodeError
from relay.video.frames import FrameDecoder, FrameHub, ImageFormat
from relay.video.still import StillPicture, device_size, patch

log = logging.getLogger(__name__)
MAX_CLOCK_SKEW_S = 1.0
FIRST_FRAME_WAIT_S = 0.5  # then 1, 2, 4: how long a started screencast may stay silent
FIRST_FRAME_TRIES = 4


@dataclass(frozen=True)
class CaptureOptions:
    format: ImageFormat = "jpeg"
    quality: int = 80
    max_width: int = 1920
    max_height: int = 1080

    def to_cdp(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "format": self.format,
            "maxWidth": self.max_width,
            "maxHeight": self.max_height,
            "everyNthFrame": 1,
        }
        if self.format == "jpeg":
            params["quality"] = self.quality
        return params


@dataclass
class CaptureStats:
    received: int = 0
    decoded: int = 0
    dropped: int = 0
    unchanged: int = 0  # identical to the frame before: not decoded
    during_shot: int = 0  # sent while a still picture was taken: not decoded
    errors: int = 0
    restarts: int = 0  # screencasts restarted because they sent nothing


def _decode_patch(
    decoder: FrameDecoder,
    data_b64: str,
    fmt: ImageFormat,
    sharp: av.VideoFrame | None,
    previous: av.VideoFrame | None,
) -> tuple[av.VideoFrame, av.VideoFrame | None]:
    """The frame, and (given a sharp picture and the frame before) the sharp picture with
    this frame's changes patched in, or None. One trip to the worker thread for both: a click
    or a key's picture is on its way to the person."""
    try:
        raw = base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"screencast frame is not base64: {exc}") from exc
    frame = decoder.decode(raw, fmt)
    if sharp is None or previous is None:
        return frame, None
    return frame, patch(sharp, previous, frame)


class Screencast:
    def __init__(
        self, session: CDPSession, options: CaptureOptions, executor: Executor | None = None
    ) -> None:
        self.session = session
        self.options = options
        self.hub = FrameHub()
        self.stats = CaptureStats()
        self._executor = executor
        self._decoder = FrameDecoder()
        self._users = 0
        self._running = False
        self._lock = asyncio.Lock()
        self._pending: tuple[str, float] | None = None
        self._decoding: asyncio.Task[None] | None = None
        self._first_frame: asyncio.Task[None] | None = None
        self._newest_ts = 0.0
        self._last_data = ""  # the newest frame as Chromium sent it (base64): the picture
        self._pictured = asyncio.Event()  # set while it is current
        self._previous: av.VideoFrame | None = None  # the last screencast frame decoded
        self._patched_seq = -1  # the hub's frame that is a still picture with a change patched in
        # JPEG frames carry the quality's losses: a still page gets a sharp picture too.
        self.still = StillPicture(session, self.hub, executor) if options.format == "jpeg" else None
        # The page's viewport in CSS pixels, from the frames' metadata: input is mapped to it.
        self.view: tuple[int, int] | None = None
        self.on_view: Callable[[tuple[int, int]], None] | None = None

    def metrics_change(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Around any change of the page's metrics: no still picture overlaps it (it would
        undo the change, ``still``)."""
        return self.still.paused() if self.still is not None else contextlib.nullcontext()

    def device_scale(self, css: tuple[int, int] | None, scale: float = 1.0) -> None:
        """The page is laid out at ``css`` pixels with this device scale factor (None: its
        own metrics): still pictures then have its device pixels (``still.device_size``)."""
        if self.still is not None:
            self.still.device = device_size(css, scale) if css is not None else None

    def stop_still_pictures(self) -> None:
        """No more still pictures of this page (it is being given back to its script)."""
        if self.still is not None:
            self.still.stop()

    def picture(self) -> tuple[bytes, ImageFormat] | None:
        """The newest frame of the page's own view as Chromium sent it (a JPEG, or a PNG):
        what a viewer shows while its video connects. None until the screencast has sent a
        frame since it (re)started. Costs nothing to make (no decode, no encode)."""
        if not self._pictured.is_set():
            return None
        try:
            return base64.b64decode(self._last_data, validate=True), self.options.format
        except (binascii.Error, ValueError):
            return None  # not base64: the decoder reports it

    async def wait_picture(self, timeout_s: float) -> tuple[bytes, ImageFormat] | None:
        """``picture()``, waiting at most ``timeout_s`` for the first frame of a screencast
        that has just started."""
        if not self._pictured.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._pictured.wait()
        return self.picture()

    @property
    def users(self) -> int:
        """How many viewers hold a share of the screencast."""
        return self._users

    @property
    def running(self) -> bool:
        """Whether Chromium is currently sending frames (some viewer is watching)."""
        return self._running

    async def acquire(self) -> None:
        """A viewer wants frames: start the screencast if it is the first."""
        async with self._lock:
            self._users += 1
            if not self._running:
                self.session.on("Page.screencastFrame", self._on_frame)
                await self.session.send("Page.startScreencast", self.options.to_cdp())
                self._running = True
                self._watch_first_frame()
                if self.still is not None:
                    self.still.start()

    async def release(self) -> None:
        """A viewer left: stop the screencast once nobody watches."""
        async with self._lock:
            self._users = max(0, self._users - 1)
            if self._users == 0 and self._running:
                await self._stop()

    async def resize(self, max_width: int, max_height: int) -> None:
        """Ask for frames of at most this size, restarting the screencast if it runs."""
        async with self._lock:
            if (self.options.max_width, self.options.max_height) == (max_width, max_height):
                return
            self.options = replace(self.options, max_width=max_width, max_height=max_height)
            if self._running:
                await self.session.send("Page.stopScreencast")
                await self.session.send("Page.startScreencast", self.options.to_cdp())
                self._watch_first_frame()

    def _watch_first_frame(self) -> None:
        if self._first_frame is not None:
            self._first_frame.cancel()
        self._first_frame = asyncio.create_task(self._first_frame_watch(), name="first-frame")

    async def _first_frame_watch(self) -> None:
        """Restart a screencast that sends nothing.

        Chromium sends screencast frames when the page draws. A screencast started while its
        tab was still hidden (a tab just made or just brought to the front, on a busy
        machine) can miss the tab's first drawing, and a still page then never sends a frame:
        the viewer would stay black. A restart captures the page as it is.
        """
        received = self.stats.received
        for attempt in range(FIRST_FRAME_TRIES):
            await asyncio.sleep(FIRST_FRAME_WAIT_S * 2**attempt)
            async with self._lock:
                if not self._running or self.stats.received != received:
                    return
                log.info("screencast: no frame yet, restarting it")
                self.stats.restarts += 1
                try:
                    await self.session.send("Page.stopScreencast")
                    await self.session.send("Page.startScreencast", self.options.to_cdp())
                except (CDPClosed, CDPError, TimeoutError):
                    return

    async def _stop(self) -> None:
        self._running = False
        # What Chromium sent last may be stale by the time the screencast runs again: no
        # picture until it sends a frame (the same one again, likely, which is not decoded).
        self._pictured.clear()
        if self.still is not None:
            self.still.stop()
        if self._first_frame is not None and self._first_frame is not asyncio.current_task():
            self._first_frame.cancel()
        self.session.off("Page.screencastFrame", self._on_frame)
        try:
            await self.session.send("Page.stopScreencast", timeout_s=3)
        except (CDPClosed, CDPError, TimeoutError):
            pass  # the target is gone or going: nothing left to stop

    async def close(self) -> None:
        async with self._lock:
            if self._running:
                await self._stop()
            self._users = 0
        if self.still is not None:
            await self.still.close()
        if self._decoding is not None:
            self._decoding.cancel()
            try:
                await self._decoding
            except asyncio.CancelledError:
                pass
        self.hub.close()

    def _on_frame(self, params: dict[str, Any]) -> None:
        ack_id = params.get("sessionId")
        if ack_id is not None:
            self.session.notify("Page.screencastFrameAck", {"sessionId": ack_id})
        data = params.get("data")
        if not isinstance(data, str):
            return
        self.stats.received += 1
        meta = params.get("metadata") or {}
        width, height = meta.get("deviceWidth"), meta.get("deviceHeight")
        view = None
        if isinstance(width, int | float) and isinstance(height, int | float):
            view = (round(width), round(height))
        if self.still is not None and self.still.shooting and view != self.view:
            # The page as a screenshot renders it, at device pixels (StillPicture.shooting).
            # A frame of the page's own view is the page changing meanwhile: it goes on, or
            # the change (a click's) would be lost behind a picture taken just before it.
            self.stats.during_shot += 1
            return
        if view is not None and view != self.view and view[0] > 0 and view[1] > 0:
            self.view = view
            if self.on_view is not None:
                self.on_view(view)
        ts = meta.get("timestamp")
        now_mono, now_wall = time.monotonic(), time.time()
        captured_at = now_mono
        if isinstance(ts, int | float):
            if ts < self._newest_ts:
                self.stats.dropped += 1
                return  # out of order: an older frame than one we already have
            self._newest_ts = ts
            age = now_wall - ts
            if 0 <= age <= MAX_CLOCK_SKEW_S:  # a skewed browser clock falls back to arrival
                captured_at = now_mono - age
        self._pictured.set()  # the picture is current
        if data == self._last_data:
            self.stats.unchanged += 1
            return  # the same picture again (a screenshot makes Chromium send one)
        self._last_data = data
        if self._pending is not None:
            self.stats.dropped += 1
        self._pending = (data, captured_at)
        if self._decoding is None or self._decoding.done():
            self._decoding = asyncio.create_task(self._decode_pending(), name="screencast-decode")

    async def _decode_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending is not None:
            data, captured_at = self._pending
            self._pending = None
            base = self.hub.latest
            previous = self._previous
            sharp = None
            if (
                self.still is not None
                and previous is not None
                and base is not None
                and (base.sharp or base.seq == self._patched_seq)
            ):
                # A small change on a sharp picture: the rest of it stays sharp (still.patch).
                sharp = base.frame
            try:
                frame, patched = await loop.run_in_executor(
                    self._executor, _decode_patch, self._decoder, data, self.options.format,
                    sharp, previous,
                )  # fmt: skip
            except DecodeError as exc:
                self.stats.errors += 1
                if self.stats.errors in (1, 10, 100) or self.stats.errors % 1000 == 0:
                    log.warning("screencast: %s (%d so far)", exc, self.stats.errors)
                continue
            self.stats.decoded += 1
            self._previous = frame
            if patched is not None:
                self.hub.publish(patched, captured_at)
                latest = self.hub.latest
                self._patched_seq = latest.seq if latest is not None else -1
            else:
                self.hub.publish(frame, captured_at)
