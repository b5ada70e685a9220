"""What ``deploy/`` ships, run against the real parts: ``deploy/nginx.conf`` in a real nginx in
front of a relay (the CDP WebSocket, server-sent events, WHEP), the compose balancer's routing
of links and scripts over two relays, and the Kubernetes manifests validated against the
current Kubernetes schemas."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from relay.config import OPTIONS
from relay.http.app import RunningServer
from relay.testing.nginx import free_port, nginx_available, run_nginx, self_signed
from relay.testing.pages import SourcePage, eventually
from relay.testing.whep import WhepReceiver
from relay.tokens import Secret

from .conftest import REDIS_URL, StartRelay

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KEY = "k-deploy-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
needs_nginx = pytest.mark.skipif(
    not nginx_available(), reason="needs nginx (make test installs it)"
)


def _site(port: int, relay_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx.conf as shipped, but for the ports and the certificate's paths."""
    site = (DEPLOY / "nginx.conf").read_text()
    for old, new in (
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;"),
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{relay_port};"),
        ("/etc/ssl/certs/relay.example.com.pem", str(cert)),
        ("/etc/ssl/private/relay.example.com.key", str(key)),
    ):
        assert old in site, old
        site = site.replace(old, new)
    return site


async def _create(http: aiohttp.ClientSession, base: str, source: SourcePage) -> dict[str, Any]:
    body = {"browserWSEndpoint": source.chromium.ws_endpoint, "targetId": source.target_id}
    async with http.post(f"{base}/api/live", json=body, headers=AUTH) as resp:
        live: dict[str, Any] = await resp.json()
        assert resp.status == 201, live
        return live


async def _plays(http: aiohttp.ClientSession, link: str) -> None:
    bot = WhepReceiver(link)
    try:
        await bot.connect(http)
        await eventually(lambda: bot.frames > 0)
    finally:
        await bot.close(http)


@needs_nginx
async def test_nginx_passes_the_cdp_websocket_events_and_whep(
    start_relay: StartRelay, source: SourcePage
) -> None:
    port = free_port()
    relay = await start_relay(api_keys=(Secret(KEY),), public_base_url=f"https://127.0.0.1:{port}")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed(Path(tmp))
        site = _site(port, relay.settings.port, cert, key)
        with run_nginx(site, port):
            base = f"https://127.0.0.1:{port}"
            connector = aiohttp.TCPConnector(ssl=False)  # the test's self-signed certificate
            async with aiohttp.ClientSession(connector=connector) as http:
                # The CDP endpoint: a WebSocket upgrade through nginx.
                async with http.ws_connect(f"{base}/chromium?token={KEY}") as ws:
                    await ws.send_json({"id": 1, "method": "Browser.getVersion"})
                    answer = await asyncio.wait_for(ws.receive_json(), 30)
                    assert answer["id"] == 1 and "product" in answer["result"]
                live = await _create(http, base, source)
                assert live["liveURL"].startswith(base)
                # WHEP through nginx (the media itself goes straight to the relay).
                await _plays(http, live["liveURL"])
                # Server-sent events arrive as they happen, not when nginx's buffer fills.
                second = await _create(http, base, source)
                events = f"{base}/api/live/{second['id']}/events"
                async with http.get(events, headers=AUTH) as stream:
                    assert (await stream.content.readline()).startswith(b"retry:")
                    await stream.content.readline()
                    asked = time.monotonic()
                    async with http.delete(f"{base}/api/live/{second['id']}", headers=AUTH):
                        pass
                    line = b""
                    while not line.startswith(b"data:"):
                        line = await asyncio.wait_for(stream.content.readline(), 10)
                    assert b"liveComplete" in line or b'"cancelled"' in line
                    assert time.monotonic() - asked < 2


def _balancer(port: int, relays: tuple[int, int]) -> str:
    """deploy/compose/balancer.conf as shipped, but for the ports."""
    site = (DEPLOY / "compose" / "balancer.conf").read_text()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    for name, relay_port in zip(("relay1", "relay2"), relays, strict=True):
        assert f"server {name}:8080" in site
        site = site.replace(f"server {name}:8080", f"server 127.0.0.1:{relay_port}")
    return site


@needs_nginx
async def test_the_compose_balancer_spreads_requests_and_any_relay_serves_any_link(
    start_relay: StartRelay, source: SourcePage, redis_prefix: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ports = (free_port(), free_port())
    shared = {"api_keys": (Secret(KEY),), "redis_url": Secret(REDIS_URL),
              "redis_prefix": redis_prefix, "public_base_url": base,
              "cluster_secret": Secret("compose-test-secret")}  # fmt: skip
    relays = [
        await start_relay(port=p, internal_url=f"http://127.0.0.1:{p}", **shared) for p in ports
    ]
    with run_nginx(_balancer(port, ports), port):
        async with aiohttp.ClientSession() as http:
            made_by = set()
            for _ in range(2):  # round robin: one link made on each relay
                live = await _create(http, base, source)
                made_by |= {i for i, r in enumerate(relays) if live["id"] in _sessions(r)}
                assert live["liveURL"].startswith(f"{base}/live/")  # no node in the link
                await _plays(http, live["liveURL"])  # page, config, WHEP: any relay answers
            assert made_by == {0, 1}


def _sessions(relay: RunningServer) -> set[str]:
    from relay.http.app import MANAGER

    return set(relay.app[MANAGER].sessions)


def test_kubernetes_manifests_are_valid() -> None:
    folder = DEPLOY / "k8s"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present, "every manifest is in kustomization.yaml, and only those"
    run = subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--no-warn",
         *(str(folder / name) for name in sorted(present))],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("passed") >= len(present)


def _settings_named(text: str) -> set[str]:
    return set(re.findall(r"\b(RELAY_[A-Z_]+)\b", text))


def test_deploy_files_name_only_real_settings() -> None:
    known = {o.env for o in OPTIONS}
    files = [*(DEPLOY / "k8s").glob("*.yaml"), DEPLOY / "compose.yaml", DEPLOY / "Dockerfile",
             DEPLOY / "compose" / "example.env", DEPLOY / "live-relay.service"]  # fmt: skip
    for path in files:
        unknown = _settings_named(path.read_text()) - known
        assert not unknown, f"{path.name} names settings the relay does not have: {unknown}"


def test_compose_file_starts_in_order() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"redis", "coturn", "relay1", "relay2", "balancer"} <= set(services)
    for relay in ("relay1", "relay2"):
        assert services[relay]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "readyz" in " ".join(services[relay]["healthcheck"]["test"])
    assert services["balancer"]["depends_on"]["relay1"]["condition"] == "service_healthy"
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
