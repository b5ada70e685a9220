"""The change map and block copies of ``relay.video.blocks`` against their plain definitions,
on planes of any size, with row padding like FFmpeg's (a plane's rows are longer than it)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.video import blocks


def padded_plane(values: np.ndarray, pad: int) -> np.ndarray:
    """``values`` as a view into rows ``pad`` bytes longer, as ``frames.plane_view`` gives."""
    h, w = values.shape
    store = np.full((h, w + pad), 7, np.uint8)
    store[:, :w] = values
    return store[:, :w]


def plain_changed(a: np.ndarray, b: np.ndarray, step: int) -> np.ndarray:
    h, w = a.shape
    rows, cols = -(-h // step), -(-w // step)
    out = np.zeros((rows, cols), bool)
    for r in range(rows):
        for c in range(cols):
            block = (slice(r * step, (r + 1) * step), slice(c * step, (c + 1) * step))
            out[r, c] = bool((a[block] != b[block]).any())
    return out


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 70),
    w=st.integers(1, 90),
    step=st.sampled_from([4, 8, 16]),
    pad=st.sampled_from([0, 3, 32]),
    seed=st.integers(0, 2**32 - 1),
    changes=st.integers(0, 6),
)
def test_the_change_map_marks_exactly_the_blocks_that_differ(
    h: int, w: int, step: int, pad: int, seed: int, changes: int
) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w), dtype=np.uint8)
    b = a.copy()
    for _ in range(changes):  # single pixels, one bit: the smallest change there is
        b[rng.integers(0, h), rng.integers(0, w)] ^= 1 << int(rng.integers(0, 8))
    rows, cols = -(-h // step), -(-w // step)
    got = blocks.changed(padded_plane(a, pad), padded_plane(b, pad), step, rows, cols)
    assert (got == plain_changed(a, b, step)).all()


@settings(max_examples=100, deadline=None)
@given(
    h=st.integers(1, 60),
    w=st.integers(1, 60),
    step=st.sampled_from([8, 16]),
    seed=st.integers(0, 2**32 - 1),
)
def test_compose_takes_marked_blocks_from_the_new_picture_and_the_rest_from_the_base(
    h: int, w: int, step: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w), dtype=np.uint8)
    fresh = rng.integers(0, 256, (h, w), dtype=np.uint8)
    rows, cols = -(-h // step), -(-w // step)
    marked = rng.random((rows, cols)) < 0.3
    target = padded_plane(np.zeros((h, w), np.uint8), 5)
    blocks.compose(padded_plane(base, 3), fresh, target, marked, step)
    full = np.kron(marked, np.ones((step, step), bool))[:h, :w]
    assert (target == np.where(full, fresh, base)).all()


def test_grow_adds_the_eight_neighbours() -> None:
    one = np.zeros((5, 6), bool)
    one[2, 3] = True
    grown = blocks.grow(one)
    assert grown.sum() == 9 and grown[1:4, 2:5].all()
    corner = np.zeros((3, 3), bool)
    corner[0, 0] = True
    assert blocks.grow(corner).sum() == 4
