"""The page's file choosers, answered with files from the person's device.

A headless page's "Choose file" opens nothing anyone can see. With
``Page.setInterceptFileChooserDialog`` Chromium reports the chooser instead
(``Page.fileChooserOpened``); the relay tells the controlling viewer (``file``), which opens
the device's own file picker (the camera on a phone where the input asks for it), announces
what the person chose (``file`` with ``f``) and sends the bytes as binary data-channel
messages, in order. Once they are all here, the files are put into the page's input the way a
page script could: a ``DataTransfer`` assigned to ``input.files``, then ``input`` and
``change``. That needs no filesystem shared with the browser, so it works the same for a
browser on the relay's host and for a remote one.

A chooser opened while no viewer is connected waits for one. Files over the size limit, more
files than the input takes, or bytes that do not match what was announced get a clear refusal
(``fileDone`` with ``ok: false``), never a broken session.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from relay.browser.cdp import CDPSession
from relay.control import protocol
from relay.errors import CDPClosed, CDPError

log = logging.getLogger(__name__)
WORLD = "live-relay-files"
BYTES_PER_CALL = 512 * 1024  # of a file, per CDP call into the page (base64 makes it 4/3)
MAX_ACCEPT_CHARS = 500
Refusal = Literal["gone", "tooMany", "tooLarge", "badData", "failed"]
Taken = Literal["more", "complete", "unexpected"]
Call = Callable[..., Awaitable[Any]]

_DESCRIBE = """function () {
  return [String(this.accept || ''), String(this.getAttribute('capture') || ''), !!this.multiple];
}"""
_RECEIVE = """function (index, b64) {
  const text = atob(b64), bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  this.__liveRelayParts = this.__liveRelayParts || [];
  (this.__liveRelayParts[index] = this.__liveRelayParts[index] || []).push(bytes);
}"""
_SET_FILES = """function (files) {
  const parts = this.__liveRelayParts || [];
  delete this.__liveRelayParts;
  if (!this.isConnected) return -1;
  const transfer = new DataTransfer();
  files.forEach((f, i) => transfer.items.add(
    new File(parts[i] || [], f.name, {type: f.type, lastModified: f.lastModified})));
  this.files = transfer.files;
  this.dispatchEvent(new Event('input', {bubbles: true, composed: true}));
  this.dispatchEvent(new Event('change', {bubbles: true}));
  return this.files.length;
}"""
_CANCEL = "function () { this.dispatchEvent(new Event('cancel', {bubbles: true})); }"


@dataclass(frozen=True)
class Chooser:
    """A file chooser the page opened: an ``<input type=file>`` and what it asks for."""

    id: int
    backend_node_id: int
    frame_id: str
    multiple: bool
    accept: str = ""
    capture: str = ""

    def to_message(self, max_bytes: int) -> str:
        return protocol.server_message(
            "file", id=self.id, multiple=self.multiple, accept=self.accept,
            capture=self.capture, maxBytes=max_bytes,
        )  # fmt: skip


def refusal(offer: protocol.FileOffer, chooser: Chooser | None, max_bytes: int) -> Refusal | None:
    """Why these files cannot go to this chooser, or None when they can."""
    if chooser is None or chooser.id != offer.chooser_id:
        return "gone"
    if len(offer.files) > 1 and not chooser.multiple:
        return "tooMany"
    if offer.total > max_bytes:
        return "tooLarge"
    return None


class Assembly:
    """The bytes of the announced files, in order, exactly as many as announced."""

    def __init__(self, offer: protocol.FileOffer) -> None:
        self.offer = offer
        self.parts = [bytearray() for _ in offer.files]
        self.received = 0
        self._file = 0
        self._skip_full()

    def _skip_full(self) -> None:
        files = self.offer.files
        while self._file < len(files) and len(self.parts[self._file]) == files[self._file].size:
            self._file += 1

    @property
    def complete(self) -> bool:
        return self._file == len(self.offer.files)

    def take(self, data: bytes) -> bool:
        """Add a chunk; False when it does not fit the announced sizes (the upload is bad)."""
        if self.complete or not data:
            return False
        part, size = self.parts[self._file], self.offer.files[self._file].size
        if len(part) + len(data) > size:
            return False  # a chunk never spans two files
        part += data
        self.received += len(data)
        self._skip_full()
        return True


class FileChoosers:
    def __init__(
        self, target: CDPSession, to_controller: Callable[[str], None], max_bytes: int,
        tag: str = "",
    ) -> None:  # fmt: skip
        self.target, self.tag, self.max_bytes = target, tag, max_bytes
        self._to_controller = to_controller
        self.pending: Chooser | None = None  # open in the page, waiting for the person
        self.upload: Assembly | None = None  # the person's files on their way
        self.delivered = 0  # choosers answered with files
        self.enabled = False
        self._ids = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.target.on("Page.fileChooserOpened", self._opened)
        try:
            await self.target.send("Page.setInterceptFileChooserDialog", {"enabled": True})
            self.enabled = True
        except (CDPError, TimeoutError) as exc:
            log.info("live %s: file choosers not intercepted: %s", self.tag, exc)
        except CDPClosed:
            pass

    def _opened(self, params: dict[str, Any]) -> None:
        node, frame = params.get("backendNodeId"), params.get("frameId")
        if not isinstance(node, int) or not isinstance(frame, str):
            # showOpenFilePicker() and the like: no input to put files into.
            log.info("live %s: the page opened a file picker without an input", self.tag)
            return
        self._ids += 1
        self._spawn(self._describe(self._ids, node, frame, params.get("mode")))

    async def _describe(self, chooser_id: int, node: int, frame: str, mode: Any) -> None:
        multiple, accept, capture = mode == "selectMultiple", "", ""
        try:
            async with self._input(node, frame) as call:
                found = await call(_DESCRIBE)
            if isinstance(found, list) and len(found) == 3:
                accept, capture = str(found[0])[:MAX_ACCEPT_CHARS], str(found[1])[:20]
        except (CDPError, TimeoutError, KeyError) as exc:
            log.info("live %s: could not read the file input: %s", self.tag, exc)
        except CDPClosed:
            return
        log.info("live %s: the page opened a file chooser", self.tag)
        self.pending = Chooser(chooser_id, node, frame, multiple, accept, capture)
        self.upload = None
        self._to_controller(self.pending.to_message(self.max_bytes))

    def greet(self) -> None:
        """The controller's viewer connected: show it the chooser that waits, if any."""
        self.upload = None  # bytes of an earlier connection will not come
        if self.pending is not None:
            self._to_controller(self.pending.to_message(self.max_bytes))

    def _done(self, chooser_id: int, error: Refusal | None = None, files: int = 0) -> None:
        fields: dict[str, Any] = {"id": chooser_id, "ok": error is None}
        if error is None:
            fields["files"] = files
        else:
            fields.update(error=error, maxBytes=self.max_bytes)
        self._to_controller(protocol.server_message("fileDone", **fields))

    def offer(self, offer: protocol.FileOffer) -> bool:
        """The person chose files (or none). True when the upload is complete already (empty
        files), and ``deliver`` is due."""
        if offer.cancel:
            if self.pending is not None and self.pending.id == offer.chooser_id:
                self._spawn(self._cancel(self.pending))
                self.pending, self.upload = None, None
            return False
        why = refusal(offer, self.pending, self.max_bytes)
        if why is not None:
            log.info("live %s: files refused: %s", self.tag, why)
            self._done(offer.chooser_id, why)
            return False
        self.upload = Assembly(offer)
        return self.upload.complete

    def take(self, data: bytes) -> Taken:
        """A binary message: the next bytes of the upload."""
        upload = self.upload
        if upload is None:
            return "unexpected"
        if not upload.take(data):
            self.upload = None
            log.info("live %s: upload refused: bytes beyond what was announced", self.tag)
            self._done(upload.offer.chooser_id, "badData")
            return "unexpected"
        return "complete" if upload.complete else "more"

    async def deliver(self) -> bool:
        """Put the complete upload into the page's input."""
        upload, chooser = self.upload, self.pending
        self.upload = None
        if upload is None or not upload.complete:
            return False
        if chooser is None or chooser.id != upload.offer.chooser_id:
            self._done(upload.offer.chooser_id, "gone")
            return False
        meta = [{"name": f.name, "type": f.mime, "lastModified": 0} for f in upload.offer.files]
        try:
            async with self._input(chooser.backend_node_id, chooser.frame_id) as call:
                for index, part in enumerate(upload.parts):
                    for start in range(0, len(part), BYTES_PER_CALL):
                        chunk = part[start : start + BYTES_PER_CALL]
                        await call(_RECEIVE, index, base64.b64encode(chunk).decode())
                count = await call(_SET_FILES, meta)
        except (CDPError, TimeoutError, CDPClosed, KeyError) as exc:
            log.info("live %s: could not put the files into the page: %s", self.tag, exc)
            count = -1
        if count != len(upload.offer.files):
            self._done(chooser.id, "gone" if count == -1 else "failed")
            return False
        if self.pending is chooser:
            self.pending = None
        self.delivered += 1
        log.info("live %s: %d file(s), %d bytes, put into the page", self.tag, count,
                 upload.received)  # fmt: skip
        self._done(chooser.id, files=count)
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel(self, chooser: Chooser) -> None:
        """The person chose no file: the page hears ``cancel``, as after its own picker."""
        with contextlib.suppress(CDPError, TimeoutError, CDPClosed, KeyError):
            async with self._input(chooser.backend_node_id, chooser.frame_id) as call:
                await call(_CANCEL)

    @contextlib.asynccontextmanager
    async def _input(self, node: int, frame: str) -> AsyncIterator[Call]:
        """The input element, in a world of ours: the page's scripts see neither our functions
        nor the bytes until the files are set. One world for all calls of one use (each
        ``Page.createIsolatedWorld`` makes a new one)."""
        world = await self.target.send(
            "Page.createIsolatedWorld", {"frameId": frame, "worldName": WORLD}
        )
        resolved = await self.target.send(
            "DOM.resolveNode",
            {"backendNodeId": node, "executionContextId": world["executionContextId"]},
        )
        object_id = resolved["object"]["objectId"]

        async def call(function: str, *args: Any) -> Any:
            result = await self.target.send(
                "Runtime.callFunctionOn",
                {"functionDeclaration": function, "objectId": object_id,
                 "arguments": [{"value": a} for a in args], "returnByValue": True},
            )  # fmt: skip
            if "exceptionDetails" in result:
                text = str(result["exceptionDetails"].get("text", "exception"))[:200]
                raise CDPError("Runtime.callFunctionOn", 0, f"in the page: {text}")
            return result.get("result", {}).get("value")

        try:
            yield call
        finally:
            with contextlib.suppress(CDPError, TimeoutError, CDPClosed):
                await self.target.send("Runtime.releaseObject", {"objectId": object_id})

    async def stop(self) -> None:
        self.target.off("Page.fileChooserOpened", self._opened)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.enabled:
            with contextlib.suppress(CDPClosed, CDPError, TimeoutError):
                await self.target.send(
                    "Page.setInterceptFileChooserDialog", {"enabled": False}, timeout_s=3
                )
        self.enabled = False
        self.pending = self.upload = None

    async def move_to(self, target: CDPSession) -> None:
        """Another tab is on screen: its file choosers are the ones the person answers."""
        chooser = self.pending
        await self.stop()
        if chooser is not None:
            self._done(chooser.id, "gone")
        self.target = target
        await self.start()
