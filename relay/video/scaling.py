"""Fewer pixels before fewer frames: the picture size when the bitrate cannot carry motion.

Measured on the animated benchmark page (1280x720, 60 fps, libx264 ``ultrafast``): a moving
720p frame does not get smaller than about 2.7 kB even at QP 51, so 800 kbit/s carries at most
about 30 of them a second, at the worst quality the encoder has; at half the size, the same
rate carries 60 at a usable QP. When the frame dropper (``fanout.EncodedStream``) has to hold
frames back and what gets through is under ``WANTED_FPS``, the picture steps down a size;
after ``hold_s`` with nothing held back, it tries the next size up. A step up that is followed
by a step down within ``FAILED_UP_S`` doubles ``hold_s``, so a link that only fits the smaller
size settles there instead of paying a keyframe every few seconds. libwebrtc's "balanced"
degradation does much the same with QP thresholds, which FFmpeg's encoders do not report.

A page that only changes a little (typing, a blinking caret) never fills the bitrate, so it
keeps its full size: text stays sharp. A page that goes still is back at full size with its
first repeat (``fanout.REPEAT_INTERVAL_S`` later), so what is left to read is sharp too. Only
the encoded picture shrinks; the viewer scales it up to the same place on screen and maps
input through the page's own viewport, so nothing else notices.

Pure logic: the encode loop reports what happened and asks for the scale.
"""

from __future__ import annotations

from collections import deque

SCALES = (1.0, 0.75, 0.5, 0.375, 0.25)
MIN_SIDE_PX = 320  # no smaller than this on the longest side: below it nothing is legible
WANTED_FPS = 24.0
WINDOW_S = 1.0
SETTLE_S = 1.5  # after a change, the new size needs this long before its figures count
HOLD_S = 4.0
MAX_HOLD_S = 32.0
FAILED_UP_S = 10.0


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """Even dimensions (encoders refuse odd ones), at least 2x2."""
    if scale >= 1.0:
        return width, height
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class PictureScaler:
    def __init__(self) -> None:
        self.level = 0
        self.hold_s = HOLD_S
        self._offered: deque[float] = deque()
        self._encoded: deque[float] = deque()
        self._held_at = -1e9
        self._offered_at = -1e9
        self._changed_at: float | None = None  # the first update counts as a change
        self._up_at = -1e9

    @property
    def scale(self) -> float:
        return SCALES[self.level]

    def offered(self, now: float, count: int = 1) -> None:
        """``count`` new pictures arrived from the capture."""
        self._offered.extend([now] * min(count, 240))
        self._offered_at = now

    def encoded(self, now: float) -> None:
        """A new picture went to the encoder (repeats of a still one do not count)."""
        self._encoded.append(now)

    def held(self, now: float) -> None:
        """The frame dropper is holding a new picture back: the bitrate is spent."""
        self._held_at = now

    def settled(self, now: float) -> None:
        """A still picture of the page came (``still.StillPicture``): it is read at full size
        at once, not when the next repeat would notice the page stopped moving (after a
        refinement has finished, that is the idle repeat, seconds later)."""
        if self.level > 0:
            self._up_at = now
            self._step(now, -self.level)

    def update(self, now: float, longest_side_px: int) -> float:
        """The scale for the next picture, from what happened in the last second."""
        for times in (self._offered, self._encoded):
            while times and times[0] < now - WINDOW_S:
                times.popleft()
        if self.level > 0 and now - max(self._offered_at, self._held_at) >= WINDOW_S:
            # The page went still: its last picture is re-sent at full size to be read.
            self.settled(now)
            return self.scale
        if self._changed_at is None:
            self._changed_at = now
        if now - self._changed_at < SETTLE_S:
            return self.scale  # not a full window of figures at this size yet
        offered_fps, encoded_fps = len(self._offered) / WINDOW_S, len(self._encoded) / WINDOW_S
        starved = now - self._held_at < WINDOW_S and encoded_fps < min(
            WANTED_FPS, 0.9 * offered_fps
        )
        if starved and self.level + 1 < len(SCALES):
            if longest_side_px * SCALES[self.level + 1] >= MIN_SIDE_PX:
                # Back down soon after going up: that size did not fit, wait longer next time.
                failed_up = now - self._up_at < FAILED_UP_S
                self.hold_s = min(MAX_HOLD_S, self.hold_s * 2) if failed_up else HOLD_S
                self._step(now, +1)
        elif (
            self.level > 0
            and now - self._changed_at >= self.hold_s
            and now - self._held_at >= self.hold_s
        ):
            self._up_at = now
            self._step(now, -1)
        return self.scale

    def _step(self, now: float, by: int) -> None:
        self.level += by
        self._changed_at = now
        self._offered.clear()
        self._encoded.clear()
