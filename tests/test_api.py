"""The HTTP API for scripts: keys, validation, clear errors, and the bind rule."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from relay.config import Settings, load_settings
from relay.errors import ConfigError
from relay.http.app import MANAGER, RunningServer
from relay.testing.pages import SourcePage, create_live
from relay.tokens import Secret
from relay.webrtc.ice import parse_ice_servers

from .conftest import StartRelay

KEY = "k-test-0123456789"


async def call(server: RunningServer, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.base_url + path, **kwargs) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = await (resp.json() if ctype.startswith("application/json") else resp.text())
            return resp.status, body


async def test_api_keys_are_required_when_configured(
    start_relay: StartRelay, source: SourcePage
) -> None:
    relay = await start_relay(api_keys=(Secret(KEY), Secret("other")))
    status, body = await call(relay, "POST", "/api/live", json={})
    assert status == 401 and "API key" in body["error"]
    status, _ = await call(
        relay, "POST", "/api/live", json={}, headers={"Authorization": "Bearer wrong"}
    )
    assert status == 401
    live = await create_live(relay, source, key=KEY)
    status, state = await call(relay, "GET", f"/api/live/{live['id']}?token={KEY}")
    assert status == 200 and state["status"] == "pending"
    assert "browserWSEndpoint" not in state  # may carry the browser's own key
    status, _ = await call(relay, "GET", f"/api/live/{live['id']}")
    assert status == 401
    # Viewer routes and health checks need no key.
    assert (await call(relay, "GET", "/healthz"))[0] == 200
    assert (await call(relay, "GET", "/live/" + "x" * 43))[0] == 200


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("not json", 400, "JSON"),
        ([], 400, "JSON object"),
        ({}, 400, "browserWSEndpoint is required"),
        ({"browserWSEndpoint": "ftp://x"}, 400, "ws://"),
        ({"browserWSEndpoint": "ws://127.0.0.1:1/x", "quality": 0}, 400, "quality"),
        ({"browserWSEndpoint": "ws://127.0.0.1:1/x", "quality": "high"}, 400, "quality"),
        ({"browserWSEndpoint": "ws://127.0.0.1:1/x", "type": "gif"}, 400, "type"),
        ({"browserWSEndpoint": "ws://127.0.0.1:1/x", "timeout": -5}, 400, "timeout"),
        ({"browserWSEndpoint": "ws://127.0.0.1:1/x", "resizable": "yes"}, 400, "resizable"),
        ({"browserWSEndpoint": "ws://127.0.0.1:1/x", "colour": 1}, 400, "unknown option"),
        ({"browserWSEndpoint": "ws://127.0.0.1:1/devtools/browser/x"}, 502, "cannot reach"),
    ],
)
async def test_bad_requests_get_clear_errors(
    relay: RunningServer, body: Any, status: int, words: str
) -> None:
    kwargs = {"data": body} if isinstance(body, str) else {"json": body}
    got_status, got = await call(relay, "POST", "/api/live", **kwargs)
    assert got_status == status
    assert words in got["error"]


async def test_unknown_target_and_sessions(relay: RunningServer, source: SourcePage) -> None:
    status, body = await call(
        relay,
        "POST",
        "/api/live",
        json={"browserWSEndpoint": source.chromium.http_endpoint, "targetId": "F" * 32},
    )
    assert status == 404 and "target" in body["error"]
    missing = "0" * 32
    assert (await call(relay, "GET", f"/api/live/{missing}"))[0] == 404
    assert (await call(relay, "DELETE", f"/api/live/{missing}"))[0] == 404
    assert (await call(relay, "GET", f"/api/live/{missing}/events"))[0] == 404
    assert (await call(relay, "GET", "/api/live/..%2f"))[0] == 404


async def test_http_endpoint_and_default_target(relay: RunningServer, source: SourcePage) -> None:
    status, live = await call(
        relay, "POST", "/api/live", json={"browserWSEndpoint": source.chromium.http_endpoint}
    )
    assert status == 201
    assert live["liveURL"].startswith(f"{relay.base_url}/live/")
    status, state = await call(relay, "GET", f"/api/live/{live['id']}")
    assert state["targetId"] == source.target_id
    status, state = await call(relay, "DELETE", f"/api/live/{live['id']}")
    assert status == 200 and state["reason"] == "cancelled"
    status, again = await call(relay, "DELETE", f"/api/live/{live['id']}")
    assert status == 200 and again["reason"] == "cancelled"  # idempotent


async def test_viewer_page_headers(relay: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/live/{'a' * 43}") as resp:
            assert resp.status == 200
            assert resp.headers["Referrer-Policy"] == "no-referrer"
            assert resp.headers["Cache-Control"] == "no-store"
            assert "frame-ancestors" in resp.headers["Content-Security-Policy"]
            html = await resp.text()
    assert '"iceConfig": false' in html


def test_no_keys_means_loopback_only() -> None:
    with pytest.raises(ConfigError, match="RELAY_API_KEYS"):
        Settings(host="0.0.0.0").check_bind()
    with pytest.raises(ConfigError):
        Settings(host="::").check_bind()
    Settings(host="127.0.0.1").check_bind()
    Settings(host="::1").check_bind()
    Settings(host="localhost").check_bind()
    replace(Settings(host="0.0.0.0"), api_keys=(Secret("k"),)).check_bind()


async def test_server_refuses_public_bind_without_keys(start_relay: StartRelay) -> None:
    with pytest.raises(ConfigError):
        await start_relay(host="0.0.0.0")


async def test_configured_ice_servers_stay_out_of_the_viewer_page(
    start_relay: StartRelay,
) -> None:
    servers = parse_ice_servers(
        '[{"urls": "turn:turn.example:3478", "username": "u", "credential": "secret-p"}]'
    )
    relay = await start_relay(ice_servers=servers)
    status, html = await call(relay, "GET", "/live/" + "a" * 43)
    assert status == 200 and '"iceConfig": true' in html  # fetched with the link instead
    assert "turn.example" not in html and "secret-p" not in html
    _, plain = await call(await start_relay(), "GET", "/live/" + "a" * 43)
    assert '"iceConfig": false' in plain  # no servers: the offer starts without a request


async def test_frame_ancestors_setting_reaches_the_csp(start_relay: StartRelay) -> None:
    relay = await start_relay(frame_ancestors="https://app.example.com https://*.example.org")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{relay.base_url}/live/{'a' * 43}") as resp:
            csp = resp.headers["Content-Security-Policy"]
    assert csp.endswith("frame-ancestors https://app.example.com https://*.example.org")
    with pytest.raises(ConfigError, match="origins"):
        load_settings(env={"RELAY_FRAME_ANCESTORS": "https://x; script-src *"})


async def test_invalid_complete_when_selector_is_refused(
    relay: RunningServer, source: SourcePage
) -> None:
    status, body = await call(
        relay, "POST", "/api/live",
        json={"browserWSEndpoint": source.chromium.http_endpoint,
              "completeWhen": {"selector": "div[["}},
    )  # fmt: skip
    assert status == 400 and "selector" in body["error"]
    assert relay.app[MANAGER].sessions == {}


async def test_allowed_hosts_refuse_other_browsers_and_webhooks(
    start_relay: StartRelay, source: SourcePage
) -> None:
    relay = await start_relay(allowed_hosts=("10.0.0.0/8",))
    body = {"browserWSEndpoint": source.chromium.ws_endpoint, "targetId": source.target_id}
    status, answer = await call(relay, "POST", "/api/live", json=body)
    assert status == 403 and "RELAY_ALLOWED_HOSTS" in answer["error"]
    port = source.chromium.ws_endpoint.split(":")[2].split("/")[0]
    status, _ = await call(
        relay, "POST", "/api/live", json={"browserWSEndpoint": f"http://0x7f000001:{port}"}
    )
    assert status == 403  # the same address spelled another way is still not on the list
    local = await start_relay(allowed_hosts=("127.0.0.1",))
    status, _ = await call(local, "POST", "/api/live", json=body)
    assert status == 201
    status, answer = await call(
        local, "POST", "/api/live", json={**body, "notify": "http://hooks.example.org/x"}
    )
    assert status == 403 and "notify" in answer["error"]
