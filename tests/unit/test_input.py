"""The pure input pieces: protocol messages, their CDP translation, coalescing, the flood gate."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.control import protocol
from relay.control.input import InputTranslator, _coalesce, virtual_key_code
from relay.control.protocol import Key, Pointer, Text, Touch, Wheel
from relay.webrtc.flood import FloodGate


def key(k: str, code: str = "", mods: int = 0, down: bool = True) -> Key:
    return Key(down, k, code, mods, False, 0)


def test_printable_keys_type_text_and_named_keys_do_not() -> None:
    t = InputTranslator()
    _, a = t.translate(key("a", "KeyA"))[0]
    assert (a["type"], a["text"], a["windowsVirtualKeyCode"]) == ("keyDown", "a", 65)
    _, shifted = t.translate(key("!", "Digit1", mods=8))[0]
    assert (shifted["type"], shifted["text"], shifted["modifiers"]) == ("keyDown", "!", 8)
    _, enter = t.translate(key("Enter", "Enter"))[0]
    assert (enter["type"], enter["text"], enter["windowsVirtualKeyCode"]) == ("keyDown", "\r", 13)
    _, back = t.translate(key("Backspace", "Backspace"))[0]
    assert back["type"] == "rawKeyDown" and "text" not in back
    assert back["windowsVirtualKeyCode"] == 8
    _, ctrl_a = t.translate(key("a", "KeyA", mods=2))[0]
    assert ctrl_a["type"] == "rawKeyDown" and ctrl_a["modifiers"] == 2  # a shortcut, not text
    _, up = t.translate(key("a", "KeyA", down=False))[0]
    assert up["type"] == "keyUp"
    _, accented = t.translate(key("é", "KeyE"))[0]
    assert accented["text"] == "é"


@pytest.mark.parametrize(
    ("k", "code", "vk"),
    [("z", "KeyZ", 90), ("5", "Digit5", 53), ("ArrowLeft", "ArrowLeft", 37), (",", "Comma", 188),
     ("F5", "F5", 116), ("Delete", "Delete", 46), (" ", "Space", 32), ("7", "Numpad7", 103)],
)  # fmt: skip
def test_virtual_key_codes(k: str, code: str, vk: int) -> None:
    assert virtual_key_code(k, code) == vk


def test_clicks_carry_click_count_and_buttons_and_are_clamped() -> None:
    t = InputTranslator()
    t.viewport = (800, 600)
    _, down = t.translate(Pointer("down", 900, -5, 0, 1, 2, 0))[0]
    assert down == {
        "type": "mousePressed", "x": 799.0, "y": 0.0, "button": "left", "buttons": 1,
        "clickCount": 2, "modifiers": 0,
    }  # fmt: skip
    _, up = t.translate(Pointer("up", 10, 10, 0, 0, 2, 0))[0]
    assert (up["type"], up["clickCount"], up["button"]) == ("mouseReleased", 2, "left")
    _, right = t.translate(Pointer("down", 10, 10, 2, 2, 1, 0))[0]
    assert right["button"] == "right"


def test_everything_held_is_released() -> None:
    t = InputTranslator()
    t.translate(key("Shift", "ShiftLeft", 8))
    t.translate(key("a", "KeyA", 8))
    t.translate(Pointer("down", 5, 6, 2, 2, 1, 0))
    t.translate(Touch("start", ((1, 3, 4),), 0))
    released = t.release_all()
    kinds = [(m, p["type"]) for m, p in released]
    assert kinds == [
        ("Input.dispatchKeyEvent", "keyUp"),
        ("Input.dispatchKeyEvent", "keyUp"),
        ("Input.dispatchMouseEvent", "mouseReleased"),
        ("Input.dispatchTouchEvent", "touchCancel"),
    ]
    assert released[2][1]["button"] == "right" and (released[2][1]["x"], released[2][1]["y"]) == (
        5,
        6,
    )
    assert t.release_all() == []


def test_touch_sequences() -> None:
    t = InputTranslator()
    _, start = t.translate(Touch("start", ((1, 10, 10),), 0))[0]
    assert start == {
        "type": "touchStart",
        "touchPoints": [{"x": 10, "y": 10, "id": 1}],
        "modifiers": 0,
    }
    t.translate(Touch("start", ((2, 50, 50),), 0))
    _, lift_one = t.translate(Touch("end", ((1, 10, 10),), 0))[0]
    assert lift_one["type"] == "touchMove" and [p["id"] for p in lift_one["touchPoints"]] == [2]
    _, lift_all = t.translate(Touch("end", ((2, 50, 50),), 0))[0]
    assert lift_all == {"type": "touchEnd", "touchPoints": [], "modifiers": 0}
    assert t.translate(Touch("cancel", (), 0)) == []


def test_moves_coalesce_but_presses_and_keys_never_do() -> None:
    m1, m2 = Pointer("move", 1, 1, -1, 0, 0, 0), Pointer("move", 2, 2, -1, 0, 0, 0)
    assert _coalesce(m1, m2) is m2
    assert _coalesce(Pointer("down", 1, 1, 0, 1, 1, 0), m2) is None
    assert _coalesce(m1, Pointer("down", 1, 1, 0, 1, 1, 0)) is None
    assert _coalesce(key("a"), key("a")) is None
    assert _coalesce(Text("a"), Text("b")) is None
    merged = _coalesce(Wheel(5, 5, 0, 10, 0), Wheel(5, 5, 1, 15, 0))
    assert merged == Wheel(5, 5, 1, 25, 0)
    assert _coalesce(Touch("move", ((1, 1, 1),), 0), Touch("move", ((1, 2, 2),), 0)) is not None
    assert _coalesce(Touch("move", ((1, 1, 1),), 0), Touch("end", ((1, 2, 2),), 0)) is None


def test_flood_gate() -> None:
    gate = FloodGate(rate_per_s=100, burst=10, tolerance=5)
    now = 1000.0
    gate.stamp = now
    assert all(gate.allow(now) for _ in range(10))  # the burst
    assert not any(gate.allow(now) for _ in range(4)) and not gate.flooding
    assert not gate.allow(now) and gate.flooding
    assert gate.allow(now + 0.06) and not gate.flooding  # half refilled: fine again


def test_a_flood_that_arrives_in_spurts_is_still_a_flood() -> None:
    # Each spurt finds a token or two refilled: refusals "in a row" would start over each time.
    gate = FloodGate(rate_per_s=100, burst=10, tolerance=20)
    now = 1000.0
    gate.stamp = now
    passed = 0
    spurts = 0
    while not gate.flooding and spurts < 40:
        spurts += 1
        now += 0.02  # two tokens back
        passed += sum(gate.allow(now) for _ in range(5))
    assert gate.flooding and spurts < 15
    assert passed <= 10 + 2 * spurts  # the burst, then the rate, never more


def test_protocol_messages() -> None:
    assert protocol.parse('{"t":"pm","x":1.5,"y":2}') == Pointer("move", 1.5, 2, -1, 0, 0, 0)
    assert protocol.parse('{"t":"pd","x":1,"y":2,"b":2,"bs":2,"c":2,"m":10}') == Pointer(
        "down", 1, 2, 2, 2, 2, 10
    )
    assert protocol.parse('{"t":"kd","k":"a","c":"KeyA","m":8,"r":true,"l":0}') == Key(
        True, "a", "KeyA", 8, True, 0
    )
    assert protocol.parse('{"t":"tx","s":"héllo"}') == Text("héllo")
    assert protocol.parse('{"t":"tc","e":"start","p":[[3,1,2]]}') == Touch("start", ((3, 1, 2),), 0)
    assert protocol.parse('{"t":"sz","w":390,"h":800,"d":3,"tc":true}') == protocol.Size(
        390, 800, 3.0, True
    )
    assert protocol.parse('{"v":1,"t":"done"}') == protocol.Done()
    assert protocol.parse('{"t":"fail"}') == protocol.Done(failed=True)
    for bad in (
        '{"v":2,"t":"done"}', '{"t":"pd","x":1,"y":2,"b":7}', '{"t":"pm","x":1e9,"y":0}',
        '{"t":"kd","k":""}', '{"t":"kd","k":"' + "x" * 40 + '"}', '{"t":"tx","s":""}',
        '{"t":"tc","e":"start","p":[]}', '{"t":"tc","e":"move","p":[[1,2]]}',
        '{"t":"sz","w":0,"h":10}', '{"t":"pm","x":1,"y":1,"m":16}', '{"t":"pm","x":true,"y":1}',
        json.dumps({"t": "tc", "e": "move", "p": [[i, 1, 1] for i in range(11)]}),
        "[" * 5000,
    ):  # fmt: skip
        with pytest.raises(protocol.ProtocolError):
            protocol.parse(bad)


_message_like = st.fixed_dictionaries(
    {"t": st.sampled_from(["pm", "pd", "pu", "wh", "kd", "ku", "tx", "tc", "sz", "ping", "done"])},
    optional={
        k: st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40),
                     st.lists(st.lists(st.integers() | st.floats(), max_size=4), max_size=12))
        for k in "x y b bs c m dx dy k s e p w h d tc v ts".split()
    },
)  # fmt: skip


@given(st.binary(max_size=6000) | st.text(max_size=6000) | _message_like.map(json.dumps))
@settings(max_examples=1000, deadline=None)
def test_parser_and_translator_survive_anything(raw: bytes | str) -> None:
    try:
        message = protocol.parse(raw)
    except protocol.ProtocolError:
        return
    if isinstance(message, Pointer | Wheel | Key | Text | Touch):
        t = InputTranslator()
        t.viewport = (1280, 720)
        for method, params in t.translate(message) + t.release_all():
            assert method.startswith("Input.")
            json.dumps(params)  # always sendable
