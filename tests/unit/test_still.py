"""Patching a small change into a sharp picture (pure numpy on real av frames)."""

from __future__ import annotations

import base64
from fractions import Fraction

import av
import numpy as np
import pytest

from relay.errors import DecodeError
from relay.video.frames import FrameDecoder, crop_420
from relay.video.still import BLOCK, device_size, even_scale, finer, patch, sharp_frame


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


def test_a_change_is_patched_into_a_sharp_picture_of_the_pages_device_pixels() -> None:
    rng = np.random.default_rng(9)
    css = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    sharp = frame(rng.integers(0, 256, (192, 256, 3), dtype=np.uint8))  # 2x: device pixels
    changed = css.copy()
    changed[40:50, 60:70] = 255
    out = patch(sharp, frame(css), frame(changed))
    assert out is not None and (out.width, out.height) == (256, 192)
    got = luma(out)
    assert (got[84:96, 124:136] > 200).all()  # the change, brought up to the device size
    far = np.ones(got.shape, bool)
    far[2 * BLOCK * 1 : 2 * BLOCK * 5, 2 * BLOCK * 2 : 2 * BLOCK * 6] = False
    assert (got[far] == luma(sharp)[far]).all()  # the rest stays the sharp picture
    other_shape = frame(rng.integers(0, 256, (100, 256, 3), dtype=np.uint8))
    assert patch(other_shape, frame(css), frame(changed)) is None


def test_device_sizes_are_the_same_picture_at_more_pixels() -> None:
    assert finer((632, 1276), (390, 788))  # 1.62x, each side rounded on its own
    assert finer((630, 1276), (390, 788))
    assert not finer((390, 788), (390, 788))  # the same size
    assert not finer((1280, 720), (390, 788))  # another layout
    assert device_size((390, 788), 1.62) == (630, 1276)  # rounded down, even
    scale = even_scale((390, 788), 1.62, 1280)  # the page's full width, in even device pixels
    assert device_size((390, 788), scale) == (632, 1276) and 1.6 < scale < 1.625
    # 1280/788 would round up to 634 wide and 1281 high: past the longest side allowed.
    scale = even_scale((390, 788), 1280 / 788, 1280)
    assert device_size((390, 788), scale) == (632, 1276)
    assert even_scale((1280, 720), 1.0, 1280) == 1.0
    assert device_size((1280, 720), 1.0) is None
    assert device_size((390, 788), 1.0) is None


def test_a_device_pixel_screenshot_is_cut_to_one_size_whichever_way_it_was_rounded() -> None:
    rng = np.random.default_rng(10)
    for width in (630, 631, 632, 633):
        image = av.VideoFrame.from_ndarray(
            rng.integers(0, 256, (1277, width, 3), dtype=np.uint8), format="rgb24"
        ).reformat(format="yuvj420p")
        out = crop_420(image, 630, 1276)
        assert (out.width, out.height) == (630, 1276)
        assert (luma(out) == luma(image)[:1276, :630]).all()  # cut, not resampled


def jpeg_b64(width: int, height: int) -> str:
    rgb = np.random.default_rng(width * height).integers(0, 256, (height, width, 3), np.uint8)
    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj420p"
    ctx.time_base = Fraction(1, 25)
    packets = ctx.encode(
        av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")
    )
    return base64.b64encode(b"".join(bytes(p) for p in packets)).decode()


def test_a_screenshot_becomes_a_still_picture_only_if_it_shows_the_screencasts_page() -> None:
    decoder = FrameDecoder()
    device = (632, 1276)
    got = sharp_frame(decoder, jpeg_b64(632, 1277), 390, 788, device)  # rounded up a pixel
    assert (got.width, got.height) == device
    got = sharp_frame(decoder, jpeg_b64(390, 789), 390, 788)  # the CSS pixels: as they are
    assert (got.width, got.height) == (390, 788)
    got = sharp_frame(decoder, jpeg_b64(780, 1576), 390, 788)  # finer, no device size known
    assert (got.width, got.height) == (390, 788)
    with pytest.raises(DecodeError):  # another layout: it would show a squashed page
        sharp_frame(decoder, jpeg_b64(1280, 720), 390, 788, device)
