"""TURN done right: credentials minted per viewer (coturn's TURN REST API), fetched with the
link and never in the page; a viewer that can reach nothing but the TURN server plays over
UDP, TCP and TLS through a real coturn; a stale credential is logged as such."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time

import aiohttp
import pytest

from relay import metrics
from relay.http.app import RunningServer
from relay.testing.coturn import TURN_PORT, TURNS_PORT, coturn_available, run_coturn
from relay.testing.netns import Namespace, netns_available, only_reaching, view_inside
from relay.testing.pages import SourcePage, create_live
from relay.testing.whep import WhepReceiver
from relay.tokens import Secret
from relay.webrtc.ice import IcePolicy, IceServer, parse_ice_servers

from .conftest import StartRelay

SECRET = "turn-secret-for-tests-0123"
KEY = "k-turn-0123456789"
NS = Namespace("lrturn", "lrt0", "10.78.0.1", "10.78.0.2")
TURN_URL = "turn:turn.example:3478?transport=udp"
needs_netns = pytest.mark.skipif(
    not netns_available() or not coturn_available(),
    reason="needs root, nft and coturn (make test installs them)",
)


def _password(username: str, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


async def _get(url: str, **kwargs: object) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, **kwargs) as resp:  # type: ignore[arg-type]
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


async def test_credentials_come_with_the_link_never_in_the_page(
    start_relay: StartRelay, source: SourcePage
) -> None:
    static = parse_ice_servers('[{"urls": "stun:stun.example:3478"}]')
    relay = await start_relay(
        turn_urls=(TURN_URL,), turn_secret=Secret(SECRET), turn_ttl_s=600, ice_servers=static
    )
    status, html = await _get(f"{relay.base_url}/live/{'a' * 43}")
    assert status == 200 and '"iceConfig": true' in str(html)
    # No ICE server, and no credential, in the page (its script names them, never holds one).
    for held in ('"credential"', '"username"', "turn.example", "stun.example", SECRET):
        assert held not in str(html)
    assert (await _get(f"{relay.base_url}/live/{'a' * 43}/config"))[0] == 404
    live = await create_live(relay, source)
    status, body = await _get(f"{live['liveURL']}/config")
    assert status == 200 and isinstance(body, dict)
    stun, turn = body["iceServers"]
    assert stun == {"urls": ["stun:stun.example:3478"]}
    expiry, who = turn["username"].split(":")
    assert who == live["id"] and abs(int(expiry) - (time.time() + 600)) < 5
    assert turn["credential"] == _password(turn["username"]) and turn["urls"] == [TURN_URL]
    # Asking for the config does not spend the link; the answer carries the viewer's own.
    bot = WhepReceiver(live["liveURL"])
    async with aiohttp.ClientSession() as http:
        try:
            await bot.connect(http)
            links = bot.answer_headers.getall("Link")
            turn_link = next(v for v in links if v.startswith(f"<{TURN_URL}>"))
            username = turn_link.split('username="')[1].split('"')[0]
            assert username.endswith(":" + bot.resource.rsplit("/", 1)[1])  # type: ignore[union-attr]
            assert f'credential="{_password(username)}"' in turn_link
            again = f"{bot.resource}/config"
            assert (await _get(again))[0] == 404  # a reconnection's config needs the credential
            status, fresh = await _get(again, headers={"Authorization": f"Bearer {bot.credential}"})
            assert status == 200 and isinstance(fresh, dict) and len(fresh["iceServers"]) == 2
            # A spent link has no config any more.
            assert (await _get(f"{live['liveURL']}/config"))[0] == 404
        finally:
            await bot.close(http)


def test_the_relay_allocates_on_turn_only_when_told() -> None:
    turn = IceServer(("turn:t.example:3478",), "u", Secret("p"))
    stun = IceServer(("stun:s.example:3478",))
    policy = IcePolicy((stun, turn), (TURN_URL,), Secret(SECRET), 60.0)
    assert policy.for_relay(1000.0) == (stun,)
    viewer = policy.for_viewer("v1", 1000.0)
    assert viewer[:2] == (stun, turn) and viewer[2].username == "1060:v1"
    told = IcePolicy((stun,), (TURN_URL,), Secret(SECRET), 60.0, turn_for_relay=True)
    assert [s.username for s in told.for_relay(1000.0)] == [None, "1060:relay"]


async def _turn_only_relay(
    start_relay: StartRelay, transport: str, urls: dict[str, str], **settings: object
) -> RunningServer:
    return await start_relay(
        host=NS.host_ip, api_keys=(Secret(KEY),), turn_urls=(urls[transport],),
        turn_secret=Secret(SECRET), **settings,
    )  # fmt: skip


TRANSPORTS = {"udp": ((), (TURN_PORT,)), "tcp": ((TURN_PORT,), ()), "tls": ((TURNS_PORT,), ())}


@needs_netns
@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_a_viewer_that_reaches_only_turn_plays(
    start_relay: StartRelay, source: SourcePage, transport: str
) -> None:
    tcp, udp = TRANSPORTS[transport]
    with NS.up(only_reaching(NS.host_ip, tcp, udp)), run_coturn(NS.host_ip, SECRET) as turn:
        relay = await _turn_only_relay(start_relay, transport, turn.urls)
        NS.allow_tcp(relay.settings.port)  # the page and WHEP; media only through TURN
        live = await create_live(relay, source, key=KEY)
        seen = await view_inside(NS, live["liveURL"], timeout_s=20, trust_ca=turn.ca)
        print(f"TURN over {transport}: first frame {seen['first_frame_ms']} ms")
        assert seen["first_frame_ms"] is not None and seen["frames"]
        assert f":{live['id']}" in turn.log_text()  # the viewer's minted username


@needs_netns
async def test_a_stale_turn_credential_is_logged(
    start_relay: StartRelay, source: SourcePage, caplog: pytest.LogCaptureFixture
) -> None:
    tcp, udp = TRANSPORTS["udp"]

    def refused() -> float:
        found = metrics.REGISTRY.get_sample_value(
            "live_relay_viewer_ice_errors_total", {"code": "401"}
        )
        return found or 0.0

    before = refused()
    caplog.set_level(logging.WARNING, logger="relay.http.viewer")
    with NS.up(only_reaching(NS.host_ip, tcp, udp)), run_coturn(NS.host_ip, SECRET) as turn:
        relay = await _turn_only_relay(start_relay, "udp", turn.urls, turn_ttl_s=1)
        NS.allow_tcp(relay.settings.port)
        live = await create_live(relay, source, key=KEY)
        # The viewer's credentials are 2.5 s old when it uses them: expired.
        await view_inside(NS, live["liveURL"], timeout_s=4, hold_config_ms=2500)
    assert "refused the viewer's TURN credentials (401)" in caplog.text
    assert turn.urls["udp"] in caplog.text and SECRET not in caplog.text
    assert refused() > before
