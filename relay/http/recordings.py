"""Audit recordings over HTTP: ``GET /api/live/{id}/recording`` (the video; range requests, so
players seek) and ``/timeline`` (JSON), read from ``RELAY_RECORDINGS_DIR``, which the relays of
a cluster share; and the retention sweep that deletes what is older than
``RELAY_RECORDING_RETENTION_S``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from relay import tokens
from relay.http.errors import error
from relay.http.keys import MANAGER, SETTINGS

__all__ = ["recording", "retention", "timeline"]
log = logging.getLogger(__name__)
TYPES = {".mp4": "video/mp4", ".webm": "video/webm"}
SWEEP_MAX_S = 3600.0


def _folder(request: web.Request) -> Path | None:
    return request.app[SETTINGS].recordings_dir


async def recording(request: web.Request) -> web.StreamResponse:
    folder, live_id = _folder(request), request.match_info["id"]
    if folder is None or not tokens.looks_like_id(live_id):
        return error(404, "no recording")
    for suffix, content_type in TYPES.items():
        path = folder / f"{live_id}{suffix}"
        if path.is_file():
            return web.FileResponse(
                path, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
            )
    return error(404, "no recording of this session (not recorded, expired, or nothing shown)")


async def timeline(request: web.Request) -> web.StreamResponse:
    folder, live_id = _folder(request), request.match_info["id"]
    if folder is None or not tokens.looks_like_id(live_id):
        return error(404, "no timeline")
    path = folder / f"{live_id}.timeline.json"
    if path.is_file():
        return web.FileResponse(path, headers={"Content-Type": "application/json"})
    session = request.app[MANAGER].sessions.get(live_id)
    if session is not None and session.audit.timeline is not None:  # still running here
        return web.json_response(session.audit.timeline.to_json())
    return error(404, "no timeline of this session")


def _sweep(folder: Path, older_than: float) -> int:
    gone = 0
    for path in folder.glob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_mtime < older_than:
                path.unlink()
                gone += 1
    return gone


async def retention(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context: deletes expired recordings now and then while the relay runs."""
    settings = app[SETTINGS]
    folder, keep_s = settings.recordings_dir, settings.recording_retention_s

    async def run() -> None:
        assert folder is not None
        while True:
            gone = await asyncio.to_thread(_sweep, folder, time.time() - keep_s)
            if gone:
                log.info("deleted %d expired recording file(s)", gone)
            await asyncio.sleep(min(SWEEP_MAX_S, keep_s / 4))

    task = asyncio.create_task(run(), name="recordings-retention") if folder else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
