"""The proxy's memory of what a script set on its page's emulation (pure bookkeeping)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay.http.cdp_emulation import FIRST_ID, MAX_PAGES, EmulationMemory

METRICS = {"width": 1280, "height": 720, "deviceScaleFactor": 1, "mobile": False}


def test_the_last_command_of_each_kind_is_given_back_on_the_scripts_session() -> None:
    memory = EmulationMemory()
    memory.remember("T1", "S1", "Emulation.setDeviceMetricsOverride", {"width": 800})
    memory.remember("T1", "S1", "Emulation.setDeviceMetricsOverride", METRICS)
    memory.remember("T1", "S2", "Emulation.setEmulatedMedia", {"media": "print"})
    memory.remember("T1", "S1", "Page.navigate", {"url": "x"})  # not emulation: not kept
    memory.remember("T2", "S3", "Emulation.clearDeviceMetricsOverride", None)
    assert memory.give_back({"T1"}) == [
        {"id": FIRST_ID, "sessionId": "S1", "method": "Emulation.setDeviceMetricsOverride",
         "params": METRICS},
        {"id": FIRST_ID + 1, "sessionId": "S2", "method": "Emulation.setEmulatedMedia",
         "params": {"media": "print"}},
    ]  # fmt: skip
    assert memory.waiting
    assert memory.is_ours(FIRST_ID) and not memory.is_ours(FIRST_ID)  # each reply once
    assert not memory.is_ours(7)  # the script's own replies pass
    assert memory.is_ours(FIRST_ID + 1) and not memory.waiting
    # A clear is what the script set last on T2: given back as a clear.
    assert [m["method"] for m in memory.give_back({"T2", "T9"})] == [
        "Emulation.clearDeviceMetricsOverride"
    ]


def test_bad_params_are_not_kept_and_the_memory_is_bounded() -> None:
    memory = EmulationMemory()
    memory.remember("T", "S", "Emulation.setDeviceMetricsOverride", ["not", "a", "dict"])
    assert memory.give_back({"T"}) == []
    for n in range(MAX_PAGES + 50):
        memory.remember(f"T{n}", "S", "Emulation.setTouchEmulationEnabled", {"enabled": True})
    assert memory.give_back({"T0"}) == [] and len(memory.give_back({f"T{MAX_PAGES + 49}"})) == 1


@given(st.lists(st.tuples(st.sampled_from(["T1", "T2"]), st.text(max_size=5),
                          st.sampled_from(["Emulation.setDeviceMetricsOverride",
                                           "Emulation.setEmulatedMedia", "Runtime.evaluate"]),
                          st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.integers()),
                                    st.integers()))))  # fmt: skip
def test_any_sequence_gives_back_at_most_one_command_per_kind(
    commands: list[tuple[str, str, str, object]],
) -> None:
    memory = EmulationMemory()
    for target, session, method, params in commands:
        memory.remember(target, session, method, params)
    back = memory.give_back({"T1", "T2"})
    assert len(back) <= 4 and len({m["id"] for m in back}) == len(back)
    assert all(isinstance(m["params"], dict) for m in back)
