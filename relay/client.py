"""Python SDK: a person's help for your own browser, in three lines.

    async with LiveRelay("http://relay:8080", api_key=KEY) as relay:
        live = await relay.live(page, quality=50, timeout=600)  # a Playwright Page
        await notify_someone(live.url)
        outcome = await live.wait()  # outcome.reason: "done", "closed", "timeout", ...

or all of it at once: ``await request_human(page, reason="Enter the 2FA code", notify=...)``.

For a Playwright page the SDK finds the page's target id itself, and the browser's DevTools
endpoint when Chromium was started with ``--remote-debugging-port`` (any port, 0 included).
Otherwise pass ``cdp_url`` (and ``target_id`` instead of a page). Events come over server-sent
events, or straight from Redis when ``redis_url`` is given.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from relay.errors import LiveRelayError
from relay.events import Event, Reason

__all__ = ["Live", "LiveRelay", "LiveRelayError", "Outcome", "request_human"]
log = logging.getLogger(__name__)
RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)  # between attempts to reopen the event stream

Notify = Callable[[str], Awaitable[Any]] | str | Sequence[str | dict[str, str]]


@dataclass(frozen=True)
class Outcome:
    id: str
    reason: Reason
    at: str
    # More about the end: what the person said when they could not complete the task
    # (reason "failed"), or "viewerGone" (reason "closed": the viewer vanished).
    detail: str | None = None


class Live:
    """One live session: its one-time ``url`` for a person, and its events."""

    def __init__(self, relay: LiveRelay, data: dict[str, Any], page: Any = None) -> None:
        self._relay, self._page = relay, page
        self.id: str = data["id"]
        self.url: str = data["liveURL"]
        self.expires_at: str = data["expiresAt"]

    def __repr__(self) -> str:  # the URL is a secret: keep it out of logs and tracebacks
        return f"Live(id={self.id!r}, expires_at={self.expires_at!r})"

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the session, ending with ``liveComplete``, however late you ask."""
        async for event in self._relay.events(self.id):
            yield event

    async def wait(self, timeout_s: float | None = None) -> Outcome:
        """The outcome, once the session ends; ``TimeoutError`` after ``timeout_s`` (None:
        as long as it takes). The event stream is opened again if it breaks (a relay
        restarting, a proxy cutting idle connections): the outcome is kept for latecomers."""
        async with asyncio.timeout(timeout_s):
            async for event in self.events():
                if event.final:
                    assert event.reason is not None
                    await give_back_viewport(self._page)
                    detail = (event.data or {}).get("detail")
                    return Outcome(event.id, event.reason, event.at, detail)
        raise LiveRelayError("the event stream ended without an outcome")

    async def state(self) -> dict[str, Any]:
        return await self._relay.request("GET", f"/api/live/{self.id}")

    async def cancel(self) -> dict[str, Any]:
        return await self._relay.request("DELETE", f"/api/live/{self.id}")


class LiveRelay:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        cdp_url: str | None = None,
        redis_url: str | None = None,
        redis_prefix: str = "live-relay:",
        request_timeout_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.cdp_url, self.redis_url, self.redis_prefix = cdp_url, redis_url, redis_prefix
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._http: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"LiveRelay({self.base_url!r})"

    async def __aenter__(self) -> LiveRelay:
        self._http = aiohttp.ClientSession(headers=self._headers)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(headers=self._headers)
        return self._http

    async def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """One API call; the JSON answer, or ``LiveRelayError`` with the relay's reason."""
        async with self.http.request(
            method, self.base_url + path, json=body, timeout=self._timeout
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise LiveRelayError(f"{method} {path}: HTTP {resp.status}: {data.get('error')}")
            if not isinstance(data, dict):
                raise LiveRelayError(f"{method} {path}: the relay answered {type(data).__name__}")
            return data

    async def live(
        self,
        page: Any = None,
        *,
        cdp_url: str | None = None,
        target_id: str | None = None,
        quality: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the session's life, not this call's
        interactable: bool | None = None,
        resizable: bool | None = None,
        instructions: str | None = None,
        complete_when: dict[str, str] | None = None,
        notify: Sequence[str | dict[str, str]] | None = None,
    ) -> Live:
        """Create a live session for a page. ``timeout`` is in seconds."""
        cdp_url = cdp_url or self.cdp_url
        if page is not None:
            found_url, target_id = await find_page(page)
            cdp_url = cdp_url or found_url
            if cdp_url is None:
                raise LiveRelayError(
                    "cannot tell this browser's DevTools endpoint: launch Chromium with "
                    "args=['--remote-debugging-port=0'] (or a fixed port), or pass "
                    "cdp_url='http://HOST:PORT' that the relay can reach"
                )
        if cdp_url is None or target_id is None:
            raise LiveRelayError("pass a Playwright page, or cdp_url and target_id")
        body: dict[str, Any] = {"browserWSEndpoint": cdp_url, "targetId": target_id}
        for key, value in (
            ("quality", quality), ("interactable", interactable), ("resizable", resizable),
            ("instructions", instructions), ("completeWhen", complete_when),
            ("notify", list(notify) if notify is not None else None),
            ("timeout", None if timeout is None else int(timeout * 1000)),
        ):  # fmt: skip
            if value is not None:
                body[key] = value
        return Live(self, await self.request("POST", "/api/live", body), page)

    async def events(self, live_id: str) -> AsyncIterator[Event]:
        """Every event of a live session, ending with ``liveComplete``."""
        if self.redis_url:
            from relay.store.redis import RedisStore

            store = RedisStore(self.redis_url, self.redis_prefix)
            try:
                async with store.events(live_id) as events:
                    async for event in events:
                        yield event
            finally:
                await store.close()
            return
        url = f"{self.base_url}/api/live/{live_id}/events"
        for attempt in itertools.count():
            try:
                async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
                    if resp.status == 404 or 400 <= resp.status < 500:
                        raise LiveRelayError(f"events of {live_id}: HTTP {resp.status}")
                    if resp.status == 200:
                        async for line in resp.content:
                            if line.startswith(b"data:"):
                                event = Event.from_json(line[5:])
                                yield event
                                if event.final:
                                    return
            except (aiohttp.ClientError, ConnectionError) as exc:
                log.info("events of %s: the stream broke (%s); opening it again", live_id,
                         type(exc).__name__)  # fmt: skip
            # Cut, or the relay is busy (503 while Redis or the relay restarts): again.
            await asyncio.sleep(RECONNECT_DELAYS_S[min(attempt, len(RECONNECT_DELAYS_S) - 1)])


async def give_back_viewport(page: Any) -> None:
    """Set a Playwright page's viewport again, through Playwright's own DevTools session.

    Chromium keeps one viewport override per page: the live session's (the viewer's screen)
    replaced the script's, and ending it leaves the browser window's size. Only the script's
    own session can own the override again, so the SDK asks Playwright to send it anew. Chromium
    ignores a session's override equal to the one it set last, so the size moves by a pixel
    first (found by trying: one call alone leaves the window's size).
    """
    size = getattr(page, "viewport_size", None)
    if size is None or page.is_closed():
        return
    try:
        await page.set_viewport_size({"width": size["width"], "height": size["height"] + 1})
        await page.set_viewport_size(size)
    except Exception as exc:  # Playwright's own error type; the browser may be gone by now
        log.info("could not give the page its viewport back: %s", exc)


async def find_page(page: Any) -> tuple[str | None, str]:
    """(DevTools endpoint or None, target id) of a Playwright page."""
    session = await page.context.new_cdp_session(page)
    try:
        target_id = (await session.send("Target.getTargetInfo"))["targetInfo"]["targetId"]
    finally:
        await session.detach()
    browser = page.context.browser
    if browser is None:
        return None, target_id
    args = await _browser_args(browser)
    return (devtools_endpoint(args) if args else None), target_id


async def _browser_args(browser: Any) -> list[str] | None:
    """The browser's command line: from CDP where Chromium tells it (only with
    --enable-automation, which Playwright does not set), else from /proc for a local browser."""
    session = await browser.new_browser_cdp_session()
    try:
        try:
            return list((await session.send("Browser.getBrowserCommandLine"))["arguments"])
        except Exception:
            pass
        try:
            info = await session.send("SystemInfo.getProcessInfo")
            pid = next(p["id"] for p in info["processInfo"] if p["type"] == "browser")
            raw = await asyncio.to_thread(Path(f"/proc/{int(pid)}/cmdline").read_bytes)
        except Exception:
            return None
        return [arg for arg in raw.decode(errors="replace").split("\0") if arg]
    finally:
        await session.detach()


def devtools_endpoint(args: Sequence[str]) -> str | None:
    """The browser's DevTools URL from its command line: a fixed port, or DevToolsActivePort."""
    port = next(
        (a.split("=", 1)[1] for a in args if a.startswith("--remote-debugging-port=")), None
    )
    if port and port != "0":
        return f"http://127.0.0.1:{port}"
    profile = next((a.split("=", 1)[1] for a in args if a.startswith("--user-data-dir=")), None)
    if port == "0" and profile:
        active = Path(profile) / "DevToolsActivePort"
        if active.is_file():
            first = active.read_text().splitlines()[:1]
            if first and re.fullmatch(r"\d+", first[0]):
                return f"http://127.0.0.1:{first[0]}"
    return None


async def request_human(
    page: Any,
    reason: str,
    *,
    relay: LiveRelay | None = None,
    base_url: str = "http://127.0.0.1:8080",
    api_key: str | None = None,
    notify: Notify | None = None,
    timeout: float = 600,  # noqa: ASYNC109 - the session's life, not this call's
    complete_when: dict[str, str] | None = None,
) -> Outcome:
    """Ask a person for help on ``page``: create the link, tell someone, wait for the outcome.

    ``notify`` is an async callable given the link, or webhook URLs the relay will POST it to.
    """
    owned = relay is None
    client = relay or LiveRelay(base_url, api_key)
    hooks = None if notify is None or callable(notify) else notify
    try:
        live = await client.live(
            page, instructions=reason, timeout=timeout, complete_when=complete_when,
            notify=[hooks] if isinstance(hooks, str) else hooks,
        )  # fmt: skip
        if callable(notify):
            await notify(live.url)
        return await live.wait()
    finally:
        if owned:
            await client.close()
