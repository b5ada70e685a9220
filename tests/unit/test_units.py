"""Pure pieces: settings, tokens, options and the data-channel protocol (fuzzed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay import tokens
from relay.config import load_settings
from relay.errors import ConfigError, OfferError, OptionsError
from relay.sessions.options import parse_live_options
from relay.tokens import Secret
from relay.webrtc.ice import parse_ice_servers
from relay.webrtc.sdp import pick_codecs


def test_settings_from_env_and_flags() -> None:
    s = load_settings(
        env={
            "RELAY_PORT": "9000",
            "RELAY_API_KEYS": "key-alpha, key-beta",
            "RELAY_LINK_TTL_S": "60",
        },
        args={"port": "9100", "codec": "vp8"},
    )
    assert s.port == 9100 and s.codec == "vp8" and s.link_ttl_s == 60
    assert [k.value for k in s.api_keys] == ["key-alpha", "key-beta"]
    assert "key-alpha" not in repr(s) and "Secret('**********')" in repr(s)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"RELAY_PORT": "http"}, "RELAY_PORT"),
        ({"RELAY_LINK_TTL_S": "-1"}, "greater than 0"),
        ({"RELAY_CODEC": "av1"}, "auto, h264, vp8"),
        ({"RELAY_ICE_SERVERS": '[{"urls": "http://x"}]'}, "stun:"),
        ({"RELAY_PUBLIC_BASE_URL": "relay.example.com"}, "http://"),
    ],
)
def test_bad_settings_say_which(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_settings(env=env)


def test_secret_settings_are_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"RELAY_ICE_SERVERS": '{"credential": "hunter2"'})
    assert "hunter2" not in str(info.value)


def test_ice_servers() -> None:
    servers = parse_ice_servers(
        '[{"urls": ["turn:t.example:3478"], "username": "u", "credential": "p"}]'
    )
    assert servers[0].to_browser() == {
        "urls": ["turn:t.example:3478"],
        "username": "u",
        "credential": "p",
    }
    assert "p" not in repr(servers[0].credential)
    assert parse_ice_servers("") == ()


def test_tokens() -> None:
    token = tokens.new_token()
    assert tokens.looks_like_token(token) and len(token) == 43
    assert tokens.same_secret(token, tokens.token_hash(token))
    assert not tokens.same_secret(token + "x", tokens.token_hash(token))
    assert tokens.redact(f"GET /live/{token}/whep") == "GET /live/[token]/whep"
    assert len({tokens.new_token() for _ in range(1000)}) == 1000


def test_options_defaults_and_values() -> None:
    opts = parse_live_options({"browserWSEndpoint": "ws://h:1/devtools/browser/x"}, 300_000)
    assert (opts.quality, opts.type, opts.timeout_ms, opts.resizable, opts.interactable) == (
        70,
        "jpeg",
        300_000,
        True,
        True,
    )
    opts = parse_live_options(
        {
            "browserWSEndpoint": "http://h:9222",
            "quality": 50,
            "type": "png",
            "timeout": 1000.0,
            "resizable": False,
            "interactable": False,
            "targetId": "T",
        },
        300_000,
    )
    assert (opts.quality, opts.type, opts.timeout_ms, opts.target_id) == (50, "png", 1000, "T")
    assert not opts.resizable and not opts.interactable


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=20), children, max_size=6)
        ),
        max_leaves=20,
    )
)
@settings(max_examples=300, deadline=None)
def test_options_parser_never_fails_otherwise(body: object) -> None:
    try:
        parse_live_options(body, 300_000)
    except OptionsError:
        pass


def test_codec_choice() -> None:
    assert pick_codecs({"H264", "VP8"}, "auto") == ["H264", "VP8"]
    assert pick_codecs({"VP8", "VP9"}, "auto") == ["VP8"]  # a Chromium built without H.264
    assert pick_codecs({"H264", "VP8"}, "vp8") == ["VP8"]
    with pytest.raises(OfferError, match="H264"):
        pick_codecs({"VP8"}, "h264")


def test_secret_repr() -> None:
    assert "abc" not in repr(Secret("abc")) and "abc" not in str(Secret("abc"))


def test_readme_configuration_reference_is_current() -> None:
    from pathlib import Path

    from relay.config import reference_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("<!-- config-table -->\n", 1)[1].split("\n<!-- /config-table -->", 1)[0]
    assert table == reference_table(), "run `python -m relay.config` and paste it into README.md"


def test_captcha_frames_are_recognised() -> None:
    from relay.browser.probe import classify_captcha

    assert classify_captcha("https://www.google.com/recaptcha/api2/anchor?k=1") == "recaptcha"
    assert classify_captcha("https://www.recaptcha.net/recaptcha/enterprise/bframe") == "recaptcha"
    assert classify_captcha("http://127.0.0.1:9/recaptcha/api2/anchor?k=x") == "recaptcha"
    assert (
        classify_captcha("https://newassets.hcaptcha.com/captcha/v1/a/static/hcaptcha.html")
        == "hcaptcha"
    )
    assert (
        classify_captcha(
            "https://challenges.cloudflare.com/cdn-cgi/challenge-platform/h/b/turnstile/if/ov2"
        )
        == "turnstile"
    )
    for other in ("https://example.com/", "about:blank", "https://notgoogle.com/recaptcha/x",
                  "https://evilhcaptcha.com/", "javascript:alert(1)"):  # fmt: skip
        assert classify_captcha(other) is None


def test_complete_when() -> None:
    from relay.browser.probe import CompleteWhen

    when = CompleteWhen(url="https://app.example.com/dashboard*")
    assert when.url_matches("https://app.example.com/dashboard?tab=1")
    assert not when.url_matches("https://app.example.com/login?next=/dashboard")
    opts = parse_live_options(
        {"browserWSEndpoint": "ws://h:1/x", "completeWhen": {"selector": "#welcome"}}, 1000
    )
    assert opts.complete_when == CompleteWhen(selector="#welcome")
    for bad in ({}, {"url": 5}, {"url": ""}, {"colour": "x"}, "dashboard"):
        with pytest.raises(OptionsError, match="completeWhen"):
            parse_live_options({"browserWSEndpoint": "ws://h:1/x", "completeWhen": bad}, 1000)


def test_cant_complete_carries_an_optional_reason() -> None:
    from relay.control import protocol

    assert protocol.parse('{"v":1,"t":"fail"}') == protocol.Done(failed=True)
    assert protocol.parse('{"v":1,"t":"fail","r":" no code "}') == protocol.Done(True, "no code")
    for bad in ('{"v":1,"t":"fail","r":5}', '{"v":1,"t":"fail","r":"' + "x" * 501 + '"}'):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse(bad)


def test_slack_text_says_what_the_person_said() -> None:
    from relay.sessions.webhooks import slack_text

    base = {"type": "liveComplete", "id": "5f0c" * 8}
    assert slack_text({**base, "reason": "done"}) == "Live session 5f0c5f0c ended: done."
    assert slack_text({**base, "reason": "failed"}) == "Live session 5f0c5f0c ended: failed."
    said = slack_text({**base, "reason": "failed", "detail": "no code"})
    assert said == "Live session 5f0c5f0c ended: failed. The person said: no code"
    closed = {**base, "reason": "closed", "detail": "viewerGone"}
    assert slack_text(closed) == "Live session 5f0c5f0c ended: closed."


def test_dialog_messages_both_ways() -> None:
    from relay.control import protocol
    from relay.control.dialogs import parse_opening

    assert protocol.parse('{"v":1,"t":"dialog","ok":true,"s":"Ada"}') == protocol.DialogAnswer(
        True, "Ada"
    )
    assert protocol.parse('{"v":1,"t":"dialog","ok":false}') == protocol.DialogAnswer(False)
    for bad in ('{"v":1,"t":"dialog","ok":"yes"}', '{"v":1,"t":"dialog","ok":true,"s":7}'):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse(bad)
    opening = parse_opening({"type": "prompt", "message": "x" * 5000, "defaultPrompt": "g"})
    assert opening is not None and len(opening.message) == 2000 and opening.default == "g"
    assert parse_opening({"type": "print", "message": "?"}) is None
    assert parse_opening({"type": "alert", "message": 5}) is None


def test_preferences_message() -> None:
    from relay.control import protocol

    raw = '{"v":1,"t":"pref","cs":"dark","lang":"de-DE","tz":"Europe/Berlin"}'
    assert protocol.parse(raw) == protocol.Prefs("dark", "de-DE", "Europe/Berlin")
    assert protocol.parse('{"v":1,"t":"pref"}') == protocol.Prefs()
    assert protocol.parse('{"v":1,"t":"pref","tz":"America/Argentina/Buenos_Aires"}').timezone
    for bad in ('"cs":"blue"', '"lang":"de DE"', '"lang":"' + "a" * 40 + '"', '"tz":"../etc"',
                '"tz":"Europe/Berlin;x"', '"lang":5'):  # fmt: skip
        with pytest.raises(protocol.ProtocolError):
            protocol.parse('{"v":1,"t":"pref",' + bad + "}")


def test_page_agent_reports_are_checked() -> None:
    from relay.control.page_agent import Field, parse_report

    assert parse_report('{"t":"focus","field":null}') == (True, None)
    assert parse_report('{"t":"focus","field":{"type":"email","mode":""}}') == (
        True,
        Field("email", ""),
    )
    # Whatever the page's DOM says is narrowed to known values.
    odd = '{"t":"focus","field":{"type":"<script>","mode":"x"}}'
    assert parse_report(odd) == (True, Field("text", ""))
    for bad in ("nope", '{"t":"other"}', '{"t":"focus","field":5}', "x" * 2000):
        assert parse_report(bad) == (False, None)


def test_select_picks_are_checked_both_ways() -> None:
    from relay.control import protocol
    from relay.control.page_agent import MAX_LABEL_CHARS, parse_pick

    pick = parse_pick({"id": 3, "selected": 0, "options": [
        {"label": "x" * 500, "disabled": "yes", "group": "G"}, {"label": "b"},
    ]}, context_id=7)  # fmt: skip
    assert pick is not None and pick.context_id == 7
    assert pick.options[0] == {"label": "x" * MAX_LABEL_CHARS, "disabled": False, "group": "G"}
    assert pick.to_json()["options"][1] == {"label": "b", "disabled": False, "group": ""}
    for bad in ({"id": "3", "selected": 0, "options": []}, {"id": 3, "selected": 0, "options": [5]},
                {"id": 3, "selected": 0, "options": [{"label": 5}]}):  # fmt: skip
        assert parse_pick(bad, 1) is None
    assert protocol.parse('{"v":1,"t":"pick","id":3,"i":2}') == protocol.Choice(3, 2)
    for bad_message in ('{"v":1,"t":"pick","id":0,"i":2}', '{"v":1,"t":"pick","id":3,"i":-1}'):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse(bad_message)


def test_mdns_candidates_wait_until_after_the_answer() -> None:
    from relay.webrtc.sdp import defer_mdns_candidates

    offer = (
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        "a=mid:0\r\na=candidate:1 1 udp 2122 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 5000 "
        "typ host\r\na=candidate:2 1 udp 1686 203.0.113.7 6000 typ srflx raddr 0.0.0.0 rport 0"
        "\r\na=end-of-candidates\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        "a=mid:1\r\na=candidate:3 1 udp 2122 abc.LOCAL 5001 typ host\r\n"
    )
    kept, later = defer_mdns_candidates(offer)
    assert ".local" not in kept.lower() and "end-of-candidates" not in kept
    assert "203.0.113.7" in kept and "a=mid:1" in kept
    assert later == [
        ("0", "candidate:1 1 udp 2122 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 5000 typ host"),
        ("1", "candidate:3 1 udp 2122 abc.LOCAL 5001 typ host"),
    ]
    plain = offer.replace(".local", "").replace(".LOCAL", "")
    assert defer_mdns_candidates(plain) == (plain, [])  # nothing to defer: the offer as it was


def test_kept_options_come_back_the_same_and_nothing_else_passes() -> None:
    """What a relay keeps for another to take a session over (``options_to_hold``) comes back
    equal; anything else is an OptionsError, never another exception."""
    from relay.sessions.options import options_from_hold, options_to_hold, parse_live_options

    options = parse_live_options(
        {
            "browserWSEndpoint": "ws://127.0.0.1:9222/devtools/browser/x?token=k",
            "targetId": "T1", "quality": 85, "timeout": 60000, "instructions": "Sign in",
            "completeWhen": {"url": "https://example.com/*"},
            "notify": ["https://hooks.example.com/a", {"url": "mailto:ops@example.com"}],
            "showBrowserInterface": True,
        },
        300_000,
    )  # fmt: skip
    assert options_from_hold(json.loads(json.dumps(options_to_hold(options)))) == options

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=10,
    )
    kept = options_to_hold(options)

    @given(st.dictionaries(st.sampled_from([*kept, "other"]), json_values, max_size=6))
    def garbage(raw: dict[str, object]) -> None:
        try:
            options_from_hold(raw)
        except OptionsError:
            pass

    garbage()


def test_a_lifecycle_goes_on_with_the_same_deadlines_elsewhere() -> None:
    from relay.sessions.lifecycle import Lifecycle

    life = Lifecycle(60, 300, 3600, now=1000.0)
    life.go_live()
    life.interact()
    snapshot = json.loads(json.dumps(life.snapshot()))
    taken = Lifecycle(1, 1, 1)
    taken.restore(snapshot)
    # The viewer it had must come back: reconnecting, with the same deadline and reason.
    assert taken.status == "reconnecting" and taken.interacted
    assert taken.deadline() == life.deadline() == (4600.0, "timeout")
    pending = Lifecycle(60, 300, 3600, now=1000.0)
    again = Lifecycle(1, 1, 1)
    again.restore(pending.snapshot())
    assert again.status == "pending" and again.deadline() == (1060.0, "expired")
    ended = Lifecycle(60, 300, 3600)
    ended.end("done")
    with pytest.raises(ValueError):
        Lifecycle(1, 1, 1).restore(ended.snapshot())


def test_operator_cookies_are_signed_per_operator_and_expire() -> None:
    from relay.sessions.operators import Operators, parse_operator_keys

    operators = Operators(parse_operator_keys("alice:alice-key-0123456789, bob:bob-key-0123456789"))
    assert operators.sign_in("alice-key-0123456789") == "alice"
    assert operators.sign_in("alice-key-012345678") is None
    cookie = operators.cookie("alice", now=1000.0)
    assert operators.check(cookie, now=1001.0) == "alice"
    assert operators.check(cookie, now=1000.0 + 13 * 3600) is None  # expired
    forged = cookie.replace("v1.alice.", "v1.bob.")
    assert operators.check(forged, now=1001.0) is None  # bob's name, alice's signature
    csrf = operators.csrf(cookie)
    assert operators.csrf(operators.cookie("bob")) != csrf
    assert parse_operator_keys(" , ") == ()
    for bad in (
        "bob:short",
        "no-colon",
        "a b:0123456789abcdefgh",
        "x:0123456789abcdef,x:0123456789abcdef",
    ):
        with pytest.raises(ValueError):
            parse_operator_keys(bad)


@given(st.text(max_size=300))
def test_any_cookie_text_is_checked_without_error(text: str) -> None:
    from relay.sessions.operators import Operators, parse_operator_keys

    operators = Operators(parse_operator_keys("alice:alice-key-0123456789"))
    assert operators.check(text) is None or text.startswith("v1.alice.")
    assert operators.csrf_ok(text, text) in (False, True)


def test_a_timeline_counts_typing_and_never_keeps_it() -> None:
    from relay.control import protocol
    from relay.sessions.timeline import Timeline

    timeline = Timeline("x", started_at=100.0)
    timeline.navigated("https://bank.example/login?token=secret#frag")
    timeline.input(protocol.Pointer("down", 10.4, 20.6, 0, 1, 1, 0), at=101.0)
    for key in "hunter2":
        timeline.input(protocol.Key(True, key, "Key" + key.upper(), 0, False, 0), at=102.0)
        timeline.input(protocol.Key(False, key, "Key" + key.upper(), 0, False, 0), at=102.0)
    timeline.input(protocol.Key(True, "Enter", "Enter", 0, False, 0), at=102.5)
    timeline.input(protocol.Text("pässwörd"), at=103.0)
    timeline.input(protocol.DialogAnswer(ok=True, text="my answer"), at=104.0)
    document = timeline.to_json()
    events = [{k: v for k, v in e.items() if k != "t"} for e in document["events"]]
    assert events == [
        {"type": "navigation", "url": "https://bank.example/login"},
        {"type": "click", "x": 10, "y": 21, "button": 0},
        {"type": "typed", "characters": 15},
        {"type": "dialog", "accepted": True},
    ]
    text = json.dumps(document)
    assert "hunter2" not in text and "secret" not in text and "my answer" not in text


def test_recording_settings_go_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RELAY_RECORDINGS_DIR"):
        load_settings({"RELAY_RECORD": "true"})
    settings = load_settings({"RELAY_RECORD": "true", "RELAY_RECORDINGS_DIR": str(tmp_path)})
    assert settings.record and settings.recordings_dir == tmp_path


def test_expired_recordings_are_swept(tmp_path: Path) -> None:
    import os
    import time

    from relay.http.recordings import _sweep

    old, new = tmp_path / "a.mp4", tmp_path / "b.mp4"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (time.time() - 100, time.time() - 100))
    assert _sweep(tmp_path, time.time() - 50) == 1
    assert not old.exists() and new.exists()
