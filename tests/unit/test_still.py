"""Patching a small change into a sharp picture (pure numpy on real av frames)."""

from __future__ import annotations

import av
import numpy as np

from relay.video.still import BLOCK, patch


def frame(rgb: np.ndarray) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")


def luma(f: av.VideoFrame) -> np.ndarray:
    return f.to_ndarray(format="gray").astype(int)


def test_a_small_change_is_patched_in_and_the_rest_stays_sharp() -> None:
    rng = np.random.default_rng(7)
    page = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    blurred = (page // 8 * 8).astype(np.uint8)  # what the JPEG of the same page gives
    changed = blurred.copy()
    changed[40:50, 60:70] = 255  # a caret, a letter
    sharp, before, after = frame(page), frame(blurred), frame(changed)
    out = patch(sharp, before, after)
    assert out is not None
    got, want_new, want_sharp = luma(out), luma(after), luma(sharp)
    assert (got[40:50, 60:70] == want_new[40:50, 60:70]).all()  # the change shows
    # Far from it, the sharp picture is kept (one block around the change is taken too).
    far = np.ones(got.shape, bool)
    far[BLOCK * 1 : BLOCK * 5, BLOCK * 2 : BLOCK * 6] = False
    assert (got[far] == want_sharp[far]).all()


def test_large_changes_and_frames_that_do_not_fit_are_not_patched() -> None:
    rng = np.random.default_rng(8)
    a = frame(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    b = frame(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    assert patch(a, a, b) is None  # everything changed: the new frame as it is
    small = frame(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert patch(a, a, small) is None
    assert patch(small, a, a) is None
    same = patch(a, b, b)  # nothing changed: the sharp picture
    assert same is not None and (luma(same) == luma(a)).all()
