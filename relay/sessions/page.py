"""The page on the viewer's screen: its CDP target, the screencast and the shared video made
from it, the viewport input is mapped to, and the viewport the viewer asked for.

Switching tabs moves all of it at once; ending gives the page back as the script left it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from relay.browser.cdp import CDPConnection, CDPSession
from relay.control import protocol
from relay.control.input import InputTranslator
from relay.errors import CDPClosed, CDPError
from relay.sessions.options import LiveOptions
from relay.video.capture import CaptureOptions, Screencast
from relay.video.encoding import ladder
from relay.video.frames import ImageFormat
from relay.video.session_video import SessionVideo
from relay.video.still import even_scale

log = logging.getLogger(__name__)
RESIZE_DEBOUNCE_S = 0.2  # rotations and window drags come in bursts
WARM_UP_S = 10.0  # how long a loaded viewer page keeps the screencast going without an offer
Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


def capture_options(options: LiveOptions) -> CaptureOptions:
    rung = ladder(options.quality)
    return CaptureOptions(
        format=options.type,
        quality=rung.jpeg_quality,
        max_width=rung.max_side_px,
        max_height=rung.max_side_px,
    )


class ShownPage:
    def __init__(
        self,
        conn: CDPConnection,
        target: CDPSession,
        options: LiveOptions,
        spawn: Spawn,
        on_view: Callable[[tuple[int, int]], None],
        tag: str = "",
    ) -> None:
        self.conn, self.target, self.tag = conn, target, tag  # tag: the session, for logs
        self.max_side_px = ladder(options.quality).max_side_px
        self.resizable = options.resizable
        self.screencast = self._screencast(target, capture_options(options))
        self.video = SessionVideo(self.screencast.hub, ladder(options.quality))
        self.translator = InputTranslator()
        self.last_size: protocol.Size | None = None
        self._spawn, self._on_view = spawn, on_view
        self._metrics_applied = False
        self._resize: asyncio.Task[None] | None = None
        self._warm: asyncio.Task[None] | None = None

    def _screencast(self, target: CDPSession, options: CaptureOptions) -> Screencast:
        screencast = Screencast(target, options)
        screencast.on_view = self._view_changed
        return screencast

    def _view_changed(self, view: tuple[int, int]) -> None:
        self.translator.viewport = view
        self._on_view(view)

    @property
    def view(self) -> tuple[int, int]:
        """The page's viewport in CSS pixels, (0, 0) until the first frame tells it."""
        return self.screencast.view or (0, 0)

    # -- a viewer's share of the screencast --------------------------------------------------

    def warm_up(self) -> None:
        """The viewer page is loading: start the screencast now, so frames are decoded by the
        time its offer arrives (page load and ICE take a few hundred ms)."""
        if self._warm is None or self._warm.done():
            self._warm = self._spawn(self._hold_screencast(WARM_UP_S), "live-warm-up")

    async def picture(self, timeout_s: float) -> tuple[bytes, ImageFormat] | None:
        """The page's newest frame as Chromium sent it, for a viewer whose video is still
        connecting (None if none came within ``timeout_s``). Starts the screencast like a
        loading viewer page does: a reloaded viewer's request for it comes first."""
        self.warm_up()
        return await self.screencast.wait_picture(timeout_s)

    def end_warm_up(self) -> None:
        if self._warm is not None:
            self._warm.cancel()  # gives its share of the screencast back

    async def _hold_screencast(self, seconds: float) -> None:
        # Shielded: cancelled halfway through, acquire() would leave a share nobody gives back.
        acquire = asyncio.ensure_future(self.screencast.acquire())
        try:
            await asyncio.shield(acquire)
            await asyncio.sleep(seconds)
        except (CDPClosed, CDPError, TimeoutError):
            return  # the session's own watch notices a dead target
        finally:
            with contextlib.suppress(BaseException):
                await acquire
            if not acquire.cancelled() and acquire.exception() is None:
                await self.screencast.release()

    # -- the viewer's screen -----------------------------------------------------------------

    def ask_size(self, size: protocol.Size) -> None:
        """The viewer's screen changed: lay the page out for it, once the burst is over. The
        first size of a session comes when the viewer connects, not in a burst: at once (the
        debounce put the page's layout jump ~0.35 s after the first frame)."""
        first = self.last_size is None
        self.last_size = size
        if self.resizable:
            if self._resize is not None:
                self._resize.cancel()
            self._resize = self._spawn(self._apply_size(size, first), "viewer-resize")

    async def _apply_size(self, size: protocol.Size, now: bool) -> None:
        if not now:
            await asyncio.sleep(RESIZE_DEBOUNCE_S)
        await self.set_size(size)

    async def set_size(self, size: protocol.Size) -> None:
        """Lay the page out for the viewer's screen."""
        async with self.screencast.metrics_change():
            await self._set_size(size)

    async def _set_size(self, size: protocol.Size) -> None:
        side = self.max_side_px
        # The viewer's device pixels, as far as the picture's longest side allows: a phone at
        # DPR 3 gets its still pictures (what is read) above its CSS pixels.
        css = (size.width, size.height)
        scale = even_scale(css, max(1.0, min(size.dpr, side / max(css))), side)
        try:
            await self.target.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": size.width,
                    "height": size.height,
                    "deviceScaleFactor": scale,
                    "mobile": size.touch,
                },
            )
            self._metrics_applied = True
            self.screencast.device_scale((size.width, size.height), scale)
            await self.target.send(
                "Emulation.setTouchEmulationEnabled",
                {"enabled": size.touch, "maxTouchPoints": 5} if size.touch else {"enabled": False},
            )
            await self.screencast.resize(
                min(side, round(size.width * scale)), min(side, round(size.height * scale))
            )
        except (CDPError, TimeoutError) as exc:
            log.warning("live %s: could not resize the page: %s", self.tag, exc)
        except CDPClosed:
            pass  # the target is going away; the session's watch ends it

    async def restore_metrics(self) -> None:
        """Give the page back its own viewport, as the script left it."""
        if not self._metrics_applied:
            return
        self._metrics_applied = False
        async with self.screencast.metrics_change():
            # No still picture after this either: the page is being given back, and a
            # screenshot taken right after the override is cleared put the viewer's metrics
            # back on it (seen once the picture of a new layout was no longer held back).
            self.screencast.stop_still_pictures()
            self.screencast.device_scale(None)
            with contextlib.suppress(CDPClosed, CDPError, TimeoutError):
                await self.target.send("Emulation.clearDeviceMetricsOverride", timeout_s=3)
                await self.target.send(
                    "Emulation.setTouchEmulationEnabled", {"enabled": False}, timeout_s=3
                )

    # -- tabs --------------------------------------------------------------------------------

    async def page_targets(self) -> list[dict[str, Any]]:
        infos = (await self.conn.send("Target.getTargets")).get("targetInfos", [])
        return [t for t in infos if isinstance(t, dict) and t.get("type") == "page"]

    async def switch(self, target_id: str) -> bool:
        """Show another tab of the same browser; False if there is no such page.

        The new tab's screencast starts with as many viewers as the old one had, so no frame
        is missed; the old tab gets its own viewport back and is let go.
        """
        if target_id == self.target.target_id:
            return False
        if not any(t.get("targetId") == target_id for t in await self.page_targets()):
            return False
        new_target = await self.conn.attach(target_id)
        with contextlib.suppress(CDPError):
            await new_target.send("Inspector.enable")  # for Inspector.targetCrashed
        with contextlib.suppress(CDPError):
            await self.conn.send("Target.activateTarget", {"targetId": target_id})
        old_target, old_cast = self.target, self.screencast
        new_cast = self._screencast(new_target, old_cast.options)
        for _ in range(old_cast.users):
            await new_cast.acquire()
        await self.restore_metrics()  # the old tab gets its own viewport back
        self.target, self.screencast = new_target, new_cast
        self.translator.viewport = None
        self.video.switch(new_cast.hub)
        if self.last_size is not None and self.resizable:
            await self.set_size(self.last_size)
        await old_cast.close()
        await old_target.detach()
        return True

    async def close(self) -> None:
        """Give the page back and let go of the browser; each step runs whatever the others
        do, so a dead browser cannot keep the session from ending."""
        for step in (
            self.restore_metrics(),
            self.screencast.close(),
            self.video.close(),
            self.target.detach(),
            self.conn.close(),
        ):
            try:
                await step
            except Exception:
                log.exception("live %s: clean-up step failed", self.tag)
