"""A small async Chrome DevTools Protocol client over aiohttp WebSockets.

One ``CDPConnection`` per browser endpoint; ``attach()`` gives a flattened ``CDPSession`` per
target. Commands carry ids and a per-command timeout; events are dispatched per session.
A closed socket, a detached target and a crashed page all end in ``CDPSession.ended``
with a reason, so the owner of a live session has one thing to wait on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from relay import metrics
from relay.errors import CDPClosed, CDPError

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
EndReason = Literal["detached", "crashed", "disconnected"]
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a PNG screencast frame of a large page is a few MB
MAX_VERSION_BYTES = 64 * 1024  # /json/version: a few hundred bytes in practice


async def resolve_endpoint(endpoint: str, http: aiohttp.ClientSession) -> str:
    """Turn ``http://host:port`` into the browser's ``ws://.../devtools/browser/...`` URL."""
    scheme = urlsplit(endpoint).scheme
    if scheme in ("ws", "wss"):
        return endpoint
    if scheme not in ("http", "https"):
        raise ValueError("browserWSEndpoint must be a ws://, wss://, http:// or https:// URL")
    url = endpoint.rstrip("/") + "/json/version"
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            resp.raise_for_status()
            # A browser's answer is a few hundred bytes: read no more than a little over that.
            raw = await resp.content.read(MAX_VERSION_BYTES + 1)
            if len(raw) > MAX_VERSION_BYTES:
                raise ValueError(f"the answer is larger than {MAX_VERSION_BYTES} bytes")
            info = json.loads(raw)
    except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError) as exc:
        raise CDPClosed(f"cannot read {url}: {exc}") from exc
    ws_url = info.get("webSocketDebuggerUrl") if isinstance(info, dict) else None
    if not isinstance(ws_url, str):
        raise CDPClosed(f"{url} did not name a webSocketDebuggerUrl")
    return ws_url


class CDPConnection:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, http: aiohttp.ClientSession | None):
        self._ws = ws
        self._own_http = http
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._handlers: dict[tuple[str | None, str], list[EventHandler]] = {}
        self._sessions: dict[str, CDPSession] = {}
        # Sends nobody awaits (frame acks): held here, since asyncio keeps tasks only weakly.
        self._notifies: set[asyncio.Task[None]] = set()
        self.closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    @classmethod
    async def connect(
        cls, endpoint: str, http: aiohttp.ClientSession | None = None, timeout_s: float = 10.0
    ) -> CDPConnection:
        own = None
        if http is None:
            own = http = aiohttp.ClientSession()
        try:
            ws_url = await resolve_endpoint(endpoint, http)
            ws = await asyncio.wait_for(
                http.ws_connect(ws_url, max_msg_size=MAX_MESSAGE_BYTES), timeout_s
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            metrics.BROWSER_CONNECT_ERRORS.inc()
            if own is not None:
                await own.close()
            raise CDPClosed(f"cannot connect to the browser endpoint: {exc}") from exc
        except BaseException:
            if own is not None:
                await own.close()
            raise
        return cls(ws, own)

    async def _read(self) -> None:
        reason = "socket closed"
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    if msg.type == aiohttp.WSMsgType.ERROR:
                        reason = f"socket error: {self._ws.exception()}"
                    continue
                try:
                    data = json.loads(msg.data)
                except (ValueError, RecursionError):
                    log.warning("cdp: dropped a message that is not JSON")
                    continue
                if isinstance(data, dict):
                    self._dispatch(data)
        except Exception as exc:  # the reader must always reach the clean-up below
            reason = f"reader failed: {exc!r}"
            log.exception("cdp: reader failed")
        finally:
            self._fail_all(CDPClosed(f"browser connection closed ({reason})"))

    def _dispatch(self, data: dict[str, Any]) -> None:
        msg_id = data.get("id")
        if msg_id is not None:
            entry = self._pending.pop(msg_id, None)
            if entry is None:
                return
            method, fut = entry
            if fut.done():
                return
            if "error" in data:
                err = data["error"] if isinstance(data["error"], dict) else {}
                code = err.get("code", 0)
                fut.set_exception(
                    CDPError(method, code if isinstance(code, int) else 0,
                             str(err.get("message", ""))[:500])
                )  # fmt: skip
            else:
                result = data.get("result")
                fut.set_result(result if isinstance(result, dict) else {})
            return
        event = data.get("method")
        if not isinstance(event, str):
            return
        params = data.get("params") or {}
        session_id = data.get("sessionId")
        if event == "Target.detachedFromTarget" and session_id is None:
            session = self._sessions.pop(params.get("sessionId", ""), None)
            if session is not None:
                session.mark_ended("detached")
        for handler in list(self._handlers.get((session_id, event), ())):
            try:
                handler(params)
            except Exception:
                log.exception("cdp: handler for %s failed", event)

    def _fail_all(self, exc: CDPClosed) -> None:
        for _method, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()
        for session in list(self._sessions.values()):
            session.mark_ended("disconnected")
        self._sessions.clear()
        if not self.closed.done():
            self.closed.set_result(str(exc))

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        timeout_s: float = 10.0,
    ) -> dict[str, Any]:
        if self.closed.done():
            raise CDPClosed(f"{method}: browser connection is closed")
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = (method, fut)
        try:
            await self._ws.send_str(json.dumps(message))
            return await asyncio.wait_for(fut, timeout_s)
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise CDPClosed(f"{method}: {exc}") from exc
        except TimeoutError:
            raise TimeoutError(f"{method}: no answer within {timeout_s:g} s") from None
        finally:
            self._pending.pop(msg_id, None)

    def notify(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> None:
        """Send a command whose answer nobody waits for (e.g. a screencast frame ack)."""
        if self.closed.done():
            return
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        task = asyncio.create_task(self._ws.send_str(json.dumps(message)))
        self._notifies.add(task)
        task.add_done_callback(self._notified)

    def _notified(self, task: asyncio.Task[None]) -> None:
        self._notifies.discard(task)
        if not task.cancelled():
            task.exception()  # a failed send shows up as a closed socket in the reader instead

    def on(self, method: str, handler: EventHandler, session_id: str | None = None) -> None:
        self._handlers.setdefault((session_id, method), []).append(handler)

    def off(self, method: str, handler: EventHandler, session_id: str | None = None) -> None:
        handlers = self._handlers.get((session_id, method))
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[(session_id, method)]

    async def attach(self, target_id: str) -> CDPSession:
        result = await self.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})
        session_id = result.get("sessionId") if isinstance(result, dict) else None
        if not isinstance(session_id, str) or not session_id:
            raise CDPError("Target.attachToTarget", -32000, "answered without a sessionId")
        session = CDPSession(self, session_id, target_id)
        self._sessions[session.session_id] = session
        return session

    async def close(self) -> None:
        for task in list(self._notifies):
            task.cancel()
        await self._ws.close()
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass
        self._fail_all(CDPClosed("browser connection closed by us"))
        if self._own_http is not None:
            await self._own_http.close()


class CDPSession:
    """A flattened session on one target: commands and events scoped to it."""

    def __init__(self, conn: CDPConnection, session_id: str, target_id: str) -> None:
        self.conn, self.session_id, self.target_id = conn, session_id, target_id
        self.ended: asyncio.Future[EndReason] = asyncio.get_running_loop().create_future()
        conn.on("Inspector.targetCrashed", lambda _p: self.mark_ended("crashed"), session_id)

    def mark_ended(self, reason: EndReason) -> None:
        """The target is gone (its connection says so); the first reason stays."""
        if not self.ended.done():
            self.ended.set_result(reason)

    async def send(
        self, method: str, params: dict[str, Any] | None = None, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        if self.ended.done():
            raise CDPClosed(f"{method}: target session ended ({self.ended.result()})")
        return await self.conn.send(method, params, self.session_id, timeout_s)

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        self.conn.notify(method, params, self.session_id)

    def on(self, method: str, handler: EventHandler) -> None:
        self.conn.on(method, handler, self.session_id)

    def off(self, method: str, handler: EventHandler) -> None:
        self.conn.off(method, handler, self.session_id)

    async def detach(self) -> None:
        if self.ended.done():
            return
        try:
            await self.conn.send("Target.detachFromTarget", {"sessionId": self.session_id}, None, 3)
        except (CDPClosed, CDPError, TimeoutError):
            pass
