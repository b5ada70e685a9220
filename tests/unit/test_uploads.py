"""The pure parts of the page's requests: file offers and their bytes, value picks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.control import protocol
from relay.control.page_agent import parse_pick
from relay.control.uploads import Assembly, Chooser, refusal
from relay.errors import ProtocolError

CHOOSER = Chooser(id=4, backend_node_id=9, frame_id="F", multiple=False)


def offer(*sizes: int, chooser_id: int = 4) -> protocol.FileOffer:
    files = tuple(protocol.FileInfo(f"f{n}", size, "") for n, size in enumerate(sizes))
    return protocol.FileOffer(chooser_id, files)


def test_file_offers_are_checked() -> None:
    raw = {"t": "file", "id": 4, "f": [{"n": "../../etc/pass\x00wd", "s": 10, "m": "image/png"}]}
    parsed = protocol.parse(json.dumps(raw))
    assert parsed == protocol.FileOffer(
        4, (protocol.FileInfo(".._.._etc_pass_wd", 10, "image/png"),)
    )
    assert protocol.parse('{"t":"file","id":4,"cancel":true}') == protocol.FileOffer(4, cancel=True)
    assert protocol.parse('{"t":"file","id":4,"f":[{"n":"  ","s":0}]}').files[0].name == "file"
    for bad in (
        {"t": "file", "id": 4, "f": []},
        {"t": "file", "id": 4, "f": [{"n": "a", "s": -1}]},
        {"t": "file", "id": 4, "f": [{"n": "a", "s": 1, "m": "not a type"}]},
        {"t": "file", "id": 4, "f": [{"n": "a" * 201, "s": 1}]},
        {"t": "file", "id": 4, "f": [{"n": "a", "s": 1}] * 11},
        {"t": "file", "id": 0, "f": [{"n": "a", "s": 1}]},
        {"t": "file", "id": 4, "f": "a"},
    ):
        with pytest.raises(ProtocolError):
            protocol.parse(json.dumps(bad))


def test_refusals_say_why() -> None:
    assert refusal(offer(10), CHOOSER, 100) is None
    assert refusal(offer(10, chooser_id=5), CHOOSER, 100) == "gone"
    assert refusal(offer(10), None, 100) == "gone"
    assert refusal(offer(10, 10), CHOOSER, 100) == "tooMany"
    assert refusal(offer(60, 50), Chooser(4, 9, "F", multiple=True), 100) == "tooLarge"
    assert refusal(offer(101), CHOOSER, 100) == "tooLarge"


def test_an_assembly_takes_exactly_what_was_announced() -> None:
    assembly = Assembly(offer(0, 3, 0, 2))
    assert not assembly.complete
    assert assembly.take(b"ab") and not assembly.take(b"cd")  # would cross into the next file
    assert assembly.take(b"c") and assembly.take(b"de") and assembly.complete
    assert [bytes(p) for p in assembly.parts] == [b"", b"abc", b"", b"de"]
    assert not assembly.take(b"x") and assembly.received == 5
    assert Assembly(offer(0)).complete  # an empty file needs no bytes


@given(st.lists(st.integers(0, 50), min_size=1, max_size=5), st.lists(st.binary(max_size=40)))
def test_no_chunks_ever_make_an_assembly_hold_more_than_announced(
    sizes: list[int], chunks: list[bytes]
) -> None:
    assembly = Assembly(offer(*sizes))
    for chunk in chunks:
        assembly.take(chunk)
    assert all(len(p) <= s for p, s in zip(assembly.parts, sizes, strict=True))
    assert assembly.received == sum(len(p) for p in assembly.parts)
    assert assembly.complete == all(len(p) == s for p, s in zip(assembly.parts, sizes, strict=True))


def test_value_picks_are_checked_both_ways() -> None:
    pick = parse_pick({"id": 2, "kind": "date", "value": "", "min": "2026-01-01", "max": "x" * 500,
                       "step": ""}, context_id=3)  # fmt: skip
    assert pick is not None and pick.kind == "date"
    assert pick.to_json() == {"id": 2, "kind": "date", "value": "", "min": "2026-01-01",
                              "max": "x" * 100, "step": ""}  # fmt: skip
    assert parse_pick({"id": 2, "kind": "file"}, 3) is None
    assert parse_pick({"id": 2, "kind": "time", "value": 5}, 3) is None
    assert protocol.parse('{"t":"pick","id":2,"s":"2026-12-24"}') == protocol.Choice(
        2, value="2026-12-24"
    )
    with pytest.raises(ProtocolError):
        protocol.parse('{"t":"pick","id":2,"s":5}')
