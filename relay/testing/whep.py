"""A receive-only aiortc viewer for tests and benchmarks: offers like the viewer page, pings
on the data channel, counts the video frames (and bytes) it receives, and says goodbye.

With ``decode=False`` frames are counted from the RTP marker bits and never decoded, so twenty
of these can stand in for twenty browsers without their decoders swamping a small machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp
import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from multidict import CIMultiDict
from yarl import URL

from relay.webrtc import aiortc_compat


class WhepReceiver:
    def __init__(self, link: str, decode: bool = True) -> None:
        self.link = link
        self.decode = decode
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames = 0
        self.bytes = 0
        self.last_frame: av.VideoFrame | None = None
        self.last_rtp: tuple[int, int] | None = None  # (ssrc, sequence number), decode=False
        self.packets_by_ssrc: dict[int, int] = {}
        self.messages: list[dict[str, Any]] = []
        self.resource: str | None = None
        self.credential: str | None = None
        self.answer_headers: CIMultiDict[str] = CIMultiDict()
        self._tasks: list[asyncio.Task[Any]] = []

    async def connect(self, http: aiohttp.ClientSession) -> None:
        self.pc.addTransceiver("video", direction="recvonly")
        channel = self.pc.createDataChannel("relay", ordered=True)
        channel.on("message", lambda m: self.messages.append(json.loads(m)))
        channel.on("open", lambda: self._tasks.append(asyncio.ensure_future(self._ping(channel))))
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with http.post(
            f"{self.link}/whep",
            data=self.pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp"},
        ) as resp:
            text = await resp.text()
            if resp.status != 201:
                raise RuntimeError(f"offer refused: {resp.status} {text.strip()}")
            self.resource = str(resp.url.join(URL(resp.headers["Location"])))
            self.credential = resp.headers.get("X-Relay-Credential")
            self.answer_headers = resp.headers.copy()
        await self.pc.setRemoteDescription(RTCSessionDescription(text, "answer"))

    def _on_track(self, track: Any) -> None:
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        if self.decode:
            self._tasks.append(asyncio.ensure_future(self._read(track)))
        else:
            _count_without_decoding(receiver, self)

    async def _read(self, track: Any) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                self.frames += 1
                self.last_frame = frame

    async def _ping(self, channel: Any) -> None:
        while channel.readyState == "open":
            channel.send(json.dumps({"t": "ping", "ts": time.time() * 1000}))
            await asyncio.sleep(1)

    async def close(self, http: aiohttp.ClientSession | None = None) -> None:
        if http is not None and self.resource and self.credential:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                await http.delete(
                    self.resource,
                    headers={"Authorization": f"Bearer {self.credential}"},
                    timeout=aiohttp.ClientTimeout(total=10),
                )
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


def _count_without_decoding(receiver: RTCRtpReceiver, counter: WhepReceiver) -> None:
    """Count frames by RTP marker bit; reassembly, decoding and receiver reports are skipped."""

    async def handle(packet: Any, arrival_time_ms: int) -> None:
        counter.bytes += len(packet.payload)
        counter.frames += packet.marker
        counter.packets_by_ssrc[packet.ssrc] = counter.packets_by_ssrc.get(packet.ssrc, 0) + 1
        if counter.last_rtp is None or counter.last_rtp[0] == packet.ssrc:  # the media SSRC
            counter.last_rtp = (packet.ssrc, packet.sequence_number)

    aiortc_compat.intercept_rtp(receiver, handle)


__all__ = ["WhepReceiver"]
