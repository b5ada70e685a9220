"""View-only watchers: the same encoded video as the controller, no input, no ending."""

from __future__ import annotations

import asyncio

import aiohttp

from relay.http.app import RunningServer
from relay.testing.pages import SourcePage, eventually
from relay.testing.viewer import ViewerBrowser, open_live, wait_playing
from relay.testing.whep import WhepReceiver


async def watch_link(server: RunningServer, live_id: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base_url}/api/live/{live_id}/watchers") as resp:
            return resp.status, await resp.json()


async def test_watchers_share_the_controllers_encoding_and_cannot_act(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    live, controller, session = await open_live(relay, source, viewer)
    status, link = await watch_link(relay, live["id"])
    assert status == 201 and link["watchURL"].startswith(relay.base_url + "/live/")
    watcher_page = await viewer.open(link["watchURL"])
    await wait_playing(watcher_page)
    await watcher_page.wait_for_function("() => document.getElementById('done').hidden")
    async with aiohttp.ClientSession() as http:
        bots = []
        for decode in (True, False, False):
            _, more = await watch_link(relay, live["id"])
            bots.append(WhepReceiver(more["watchURL"], decode=decode))
        for bot in bots:
            await bot.connect(http)
        await eventually(lambda: all(b.frames > 0 for b in bots))
        await eventually(lambda: session.state()["watcherCount"] == 4)
        assert list(session.page.video.streams) == ["H264"]  # one encoder for all five viewers
        assert len(session.page.video.streams["H264"].tracks) == 5
        frame = bots[0].last_frame
        assert frame is not None and frame.width > 0
        # A spent watch link is refused like any used link.
        again = WhepReceiver(link["watchURL"])
        try:
            await again.connect(http)
            raise AssertionError("a watch link opened twice")
        except RuntimeError as exc:
            assert "404" in str(exc)
        finally:
            await again.close()
        # A watcher cannot end the session; leaving only removes itself.
        assert bots[1].resource and bots[1].credential
        async with http.post(
            f"{bots[1].resource}/done", headers={"Authorization": f"Bearer {bots[1].credential}"}
        ) as resp:
            assert resp.status == 403
        await bots[1].close(http)
        await eventually(lambda: session.state()["watcherCount"] == 3)
        assert session.status == "live"
        # Clicks from a watcher page do not reach the page; the controller's do.
        await source.evaluate(
            "window.__clicks = 0; addEventListener('pointerdown', () => window.__clicks++)"
        )
        await watcher_page.mouse.click(200, 200)
        await controller.mouse.click(200, 200)
        await eventually(lambda: session.life.interacted)
        await asyncio.sleep(0.3)
        assert await source.evaluate("window.__clicks") == 1
        await controller.close()  # the controller's goodbye ends the session for everyone
        await eventually(lambda: session.status == "ended")
        await watcher_page.wait_for_function("() => window.liveRelay.state === 'ended'")
        for bot in (bots[0], bots[2]):
            await bot.close()


async def test_watch_link_errors(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser
) -> None:
    status, body = await watch_link(relay, "0" * 32)
    assert status == 404 and "error" in body
    live, _controller, session = await open_live(relay, source, viewer)
    await session.end("done")
    status, body = await watch_link(relay, live["id"])
    assert status == 409
