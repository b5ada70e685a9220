"""Cloudflare Browser Run's human-in-the-loop flows, run with puppeteer-core unchanged but for the
host, the token and the page URLs: the manual flow (a browser made by POST, its first target's
Live View URL, a new page, waitForNavigation) and the structured handoff (Cloudflare.handoff,
Cloudflare.handoffComplete). A person, a headless viewer, signs in on the page the script
drives."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from relay.browser.cdp import CDPConnection
from relay.errors import CDPParamsError
from relay.http.app import MANAGER, RunningServer
from relay.http.cdp_cloudflare import parse_handoff, parse_live_view
from relay.http.keys import KEPT
from relay.sessions.session import LiveSession
from relay.testing.pages import eventually, local_site
from relay.testing.viewer import ViewerBrowser, wait_playing
from relay.tokens import Secret, redact

from .conftest import StartRelay
from .test_cdp_endpoint import RemotePage
from .test_control import centre, settled, to_client, wait_source

pytestmark = [pytest.mark.timeout(150), pytest.mark.browser]
KEY = "cf-test-key-0123456789"
NODE_DIR = Path(__file__).resolve().parent / "node"
needs_node = pytest.mark.skipif(
    not (NODE_DIR / "node_modules" / "puppeteer-core").exists() or not shutil.which("node"),
    reason="needs node and tests/node/node_modules (make test installs them)",
)
LOGIN = """<!doctype html><meta name=viewport content="width=device-width,initial-scale=1">
<style>body{margin:0;font:16px sans-serif}input,button{display:block;width:280px;height:44px;
margin:12px;font-size:16px}</style><title>Sign in</title>
<form action=/welcome method=get><input id=user name=user autocomplete=off>
<input id=pass name=pass type=password autocomplete=off><button>Sign in</button></form>"""


class Site:
    """The pages the scripts drive: a sign-in form, the page after it (which sets a cookie)
    and a dashboard that records the cookie it was asked with."""

    def __init__(self) -> None:
        self.dashboard_cookies: list[str] = []

    async def login(self, _: web.Request) -> web.Response:
        return web.Response(text=LOGIN, content_type="text/html")

    async def welcome(self, request: web.Request) -> web.Response:
        user = request.query.get("user", "")
        body = f"<!doctype html><body data-user='{user}'>Welcome, {user}</body>"
        response = web.Response(text=body, content_type="text/html")
        response.set_cookie("session", f"user-{user}")
        return response

    async def dashboard(self, request: web.Request) -> web.Response:
        self.dashboard_cookies.append(request.headers.get("Cookie", ""))
        return web.Response(text="<!doctype html>Dashboard", content_type="text/html")


async def _sign_in(viewer: ViewerBrowser, url: str, session: LiveSession) -> Any:
    """The person opens the link and signs in on the page on screen; returns the viewer page."""
    page = await viewer.open(url)
    await wait_playing(page)
    await eventually(lambda: _shows(session, "/login"), timeout_s=15)
    conn = await CDPConnection.connect(session.options.browser_ws_endpoint)
    try:
        source = RemotePage(await conn.attach(session.page.target.target_id))
        await wait_source(source, "document.title === 'Sign in'")
        await settled(page, source)  # type: ignore[arg-type]
        await page.mouse.click(*await to_client(page, *await centre(source, "#user")))  # type: ignore[arg-type]
        await wait_source(source, "document.activeElement.id === 'user'")
        await page.keyboard.type("Ada")
        await page.keyboard.press("Tab")
        await page.keyboard.type("S3cret!")
        await page.keyboard.press("Enter")
    finally:
        await conn.close()
    return page


async def _shows(session: LiveSession, path: str) -> bool:
    """Whether the page on screen is at ``path``."""
    info = await session.page.conn.send(
        "Target.getTargetInfo", {"targetId": session.page.target.target_id}
    )
    return str(info["targetInfo"].get("url", "")).endswith(path)


async def _node(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "node", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )


async def _line(proc: asyncio.subprocess.Process, pattern: str) -> re.Match[str]:
    assert proc.stdout is not None
    seen = ""
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not raw:
            raise AssertionError(f"the script ended before {pattern!r}:\n{seen}")
        seen += raw.decode()
        print(f"node> {redact(raw.decode().rstrip())}")  # the script's words, links redacted
        match = re.search(pattern, raw.decode())
        if match:
            return match


def _only_session(relay: RunningServer) -> LiveSession:
    (session,) = relay.app[MANAGER].sessions.values()
    return session


@needs_node
async def test_cloudflare_manual_flow_runs_unchanged(
    start_relay: StartRelay, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),))
    site = Site()
    routes = {"/login": site.login, "/welcome": site.welcome, "/dashboard": site.dashboard}
    async with local_site(routes) as base:
        proc = await _node(
            str(NODE_DIR / "cloudflare_manual.mjs"), relay.base_url, KEY,
            f"{base}/login", f"{base}/dashboard",
        )  # fmt: skip
        try:
            url = (await _line(proc, r"Open this URL: (\S+)")).group(1)
            session = _only_session(relay)
            # The link was made for the browser's first page; the script's new page is shown.
            await eventually(lambda: _shows(session, "/login"), timeout_s=15)
            page = await _sign_in(viewer, url, session)
            await _line(proc, r"Login complete\. Continuing automation")
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            await page.close()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert site.dashboard_cookies == ["session=user-Ada"]  # the person's sign-in, kept
    assert len(relay.app[KEPT].by_id) == 1  # keep_alive: the browser outlives the script


@needs_node
async def test_cloudflare_handoff_runs_unchanged(
    start_relay: StartRelay, viewer: ViewerBrowser
) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),))
    site = Site()
    async with local_site({"/login": site.login, "/welcome": site.welcome}) as base:
        proc = await _node(
            str(NODE_DIR / "cloudflare_handoff.mjs"), relay.base_url.replace("http", "ws"), KEY,
            f"{base}/login",
        )  # fmt: skip
        try:
            handoff = await _line(proc, r"Handoff (\w+): (\S+)")
            state = await _line(proc, r"State: (.+)")
            assert f'"active":true,"handoffId":"{handoff.group(1)}"' in state.group(1)
            session = relay.app[MANAGER].sessions[handoff.group(1)]
            assert session.options.instructions == "Sign in, then press Done."
            page = await _sign_in(viewer, handoff.group(2), session)
            conn = await CDPConnection.connect(session.options.browser_ws_endpoint)
            try:
                source = RemotePage(await conn.attach(session.page.target.target_id))
                await wait_source(source, "document.body && document.body.dataset.user")
            finally:
                await conn.close()
            await page.click("#done")
            done = await _line(proc, r"handoffComplete: (.+)")
            assert done.group(1) == '{"success":true,"reason":"done"}'
            after = await _line(proc, r"State: (.+)")
            assert after.group(1) == f'{{"active":false,"handoffId":"{handoff.group(1)}"}}'
            assert (await _line(proc, r"Signed in as: (\S+)")).group(1) == "Ada"
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_cloudflare_params_are_checked() -> None:
    view = parse_live_view({"mode": "full", "expiresInMs": 60000})
    assert (view.target_id, view.mode, view.expires_in_ms) == (None, "full", 60000)
    assert parse_live_view(None).expires_in_ms == 300000
    for bad in ({"mode": "x"}, {"expiresInMs": 3_600_001}, {"expiresInMs": "1"},
                {"targetId": 3}, {"other": 1}, [1]):  # fmt: skip
        with pytest.raises(CDPParamsError):
            parse_live_view(bad)
    ask = parse_handoff({"instructions": "Sign in", "timeout": 1000})
    assert (ask.instructions, ask.timeout_ms) == ("Sign in", 1000)
    for bad in ({"instructions": 1}, {"instructions": "x" * 501}, {"timeout": 0}):
        with pytest.raises(CDPParamsError):
            parse_handoff(bad)


async def test_keep_alive_browser_closes_after_its_time(start_relay: StartRelay) -> None:
    relay = await start_relay(api_keys=(Secret(KEY),))
    headers = {"Authorization": f"Bearer {KEY}"}
    path = "/client/v4/accounts/acct/browser-run/devtools/browser"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{relay.base_url}{path}?keep_alive=1500", headers=headers) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        assert body["webSocketDebuggerUrl"].endswith(f"{path}/{body['sessionId']}")
        async with http.get(f"{relay.base_url}{path}/{body['sessionId']}/json/list",
                            headers=headers) as resp:  # fmt: skip
            targets = await resp.json()
            assert resp.status == 200 and targets[0]["devtoolsFrontendUrl"].startswith(
                f"{relay.base_url}/live/"
            )
        async with http.post(f"{relay.base_url}{path}?keep_alive=0", headers=headers) as resp:
            assert resp.status == 400
        async with http.post(f"{relay.base_url}{path}") as resp:
            assert resp.status == 401
        await eventually(lambda: not relay.app[KEPT].by_id, timeout_s=10)
        async with http.get(f"{relay.base_url}{path}/{body['sessionId']}/json/list",
                            headers=headers) as resp:  # fmt: skip
            assert resp.status == 404
        # Its link's session ended with the browser.
        await eventually(lambda: not relay.app[MANAGER].sessions, timeout_s=10)
