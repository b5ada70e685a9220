"""The pure parts of standard WHEP: trickle fragments, Link values, the CORS origins setting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.config import parse_origins
from relay.errors import OfferError
from relay.http.cors import is_whep_path
from relay.tokens import Secret
from relay.webrtc.ice import IceServer
from relay.webrtc.sdp import MAX_TRICKLE_CANDIDATES, parse_trickle

CANDIDATE = "a=candidate:1 1 udp 2130706431 abc.local 5000 typ host"


def test_trickle_fragment_is_parsed() -> None:
    text = (
        "a=ice-ufrag:uf\r\na=ice-pwd:pw\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
        f"{CANDIDATE}\r\na=end-of-candidates\r\n"
    )
    fragment = parse_trickle(text)
    assert (fragment.ufrag, fragment.pwd) == ("uf", "pw")
    assert fragment.candidates == (("0", CANDIDATE[2:]),)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a=ice-ufrag:uf\r\n",  # no password
        "hello",
        "a=ice-ufrag:u\r\na=ice-pwd:p\r\na=candidate:1 1 udp\r\n",  # short candidate
        "a=ice-ufrag:u\r\na=ice-pwd:p\r\n" + f"{CANDIDATE}\r\n" * (MAX_TRICKLE_CANDIDATES + 1),
        "a=ice-ufrag:u\r\na=ice-pwd:p\r\n" + "a=x\r\n" * 5000,  # too large
    ],
)
def test_bad_fragments_are_refused(text: str) -> None:
    with pytest.raises(OfferError):
        parse_trickle(text)


@given(st.text(max_size=400))
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        parse_trickle(text)
    except OfferError:
        pass


def test_link_values_quote_credentials() -> None:
    server = IceServer(
        ("turn:t.example:3478?transport=udp", "turns:t.example:5349"), 'u"1', Secret("p\\w")
    )
    values = server.link_values()
    assert values[0] == (
        '<turn:t.example:3478?transport=udp>; rel="ice-server"; username="u\\"1"; '
        'credential="p\\\\w"; credential-type="password"'
    )
    assert values[1].startswith("<turns:t.example:5349>")
    assert IceServer(("stun:s.example",)).link_values() == ['<stun:s.example>; rel="ice-server"']


def test_origins_setting() -> None:
    assert parse_origins("*") == ("*",)
    assert parse_origins("https://a.example, http://b.example:8080/") == (
        "https://a.example",
        "http://b.example:8080",
    )
    for bad in ("", "*, https://a.example", "a.example", "https://a.example/path"):
        with pytest.raises(ValueError):
            parse_origins(bad)


def test_whep_paths() -> None:
    for path in ("/live/TOKEN/whep", "/live/session/abc", "/live/session/abc/whep",
                 "/live/session/abc/done", "/live/TOKEN/config"):  # fmt: skip
        assert is_whep_path(path), path
    for path in ("/live/TOKEN", "/live/", "/api/live", "/live/assets/viewer.js", "/metrics"):
        assert not is_whep_path(path), path
