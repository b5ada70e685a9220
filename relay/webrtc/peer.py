"""WHEP (WebRTC-HTTP Egress Protocol) peers: the viewer offers, the relay answers.

The viewer makes the offer, so aiortc answers and takes the DTLS client role, the robust
direction. The offer is checked before anything is spent on it (a one-time link is only
consumed by an offer the relay can actually answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    unpack_remb_fci,
)
from aiortc.sdp import SessionDescription

from relay.config import Codec, IceServer
from relay.control.input import FloodGate, InputDispatcher
from relay.video.encoding import CodecName
from relay.video.fanout import PacketTrack, SessionVideo
from relay.webrtc import playout

log = logging.getLogger(__name__)
MAX_SDP_BYTES = 64 * 1024
SDP_CONTENT_TYPE = "application/sdp"


class OfferError(ValueError):
    """The viewer's SDP offer cannot be answered; the message is safe to show the viewer."""


def offered_video_codecs(sdp: str) -> set[str]:
    """Check the offer's shape and return the video codec names it accepts (upper case)."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise OfferError("offer is too large")
    try:
        desc = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever the bad line provokes
        raise OfferError("offer is not valid SDP") from exc
    video = [m for m in desc.media if m.kind == "video"]
    if not video:
        raise OfferError("offer has no video section")
    if video[0].direction not in ("recvonly", "sendrecv"):
        raise OfferError("offer does not receive video")
    if not video[0].ice.usernameFragment or not video[0].dtls:
        raise OfferError("offer lacks ICE credentials or a DTLS fingerprint")
    return {c.name.upper() for c in video[0].rtp.codecs}


def pick_codecs(offered: set[str], codec: Codec) -> list[CodecName]:
    """Codec names to prefer, best first, limited to what the viewer can decode."""
    wanted: list[CodecName] = {"auto": ["H264", "VP8"], "h264": ["H264"], "vp8": ["VP8"]}[codec]
    usable = [name for name in wanted if name in offered]
    if not usable:
        need = " or ".join(wanted)
        raise OfferError(f"the viewer's browser cannot decode {need}")
    return usable


def _capabilities(names: list[CodecName]) -> list[RTCRtpCodecCapability]:
    caps = RTCRtpSender.getCapabilities("video").codecs
    ordered = [c for name in names for c in caps if c.name.upper() == name]
    ordered += [c for c in caps if c.name.lower() == "rtx"]
    return ordered


def rtc_configuration(servers: tuple[IceServer, ...]) -> RTCConfiguration:
    # An explicit empty list matters: with None, aiortc falls back to a public Google STUN server.
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=list(s.urls),
                username=s.username,
                credential=s.credential.value if s.credential else None,
            )
            for s in servers
        ]
    )


class ViewerPeer:
    """One peer connection to one viewer page."""

    def __init__(
        self,
        video: SessionVideo,
        ice_servers: tuple[IceServer, ...],
        on_message: Callable[[ViewerPeer, str | bytes], None],
        on_lost: Callable[[ViewerPeer], None],
        watcher: bool = False,
    ) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self.video = video
        self.watcher = watcher  # a view-only watcher, not the session's controller
        self.track: PacketTrack | None = None
        self.channel: RTCDataChannel | None = None
        self.last_seen = time.monotonic()
        self.codec: str | None = None
        self.closed = False
        self.input: InputDispatcher | None = None  # set when the session takes input from it
        self.gate = FloodGate()
        self._on_message = on_message
        self._on_lost = on_lost
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if self.channel is not None:
            log.info("viewer opened a second data channel; ignoring it")
            return
        self.channel = channel
        self.last_seen = time.monotonic()

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            self.last_seen = time.monotonic()
            self._on_message(self, message)

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        if state in ("failed", "closed") and not self.closed:
            self._on_lost(self)

    async def answer(self, offer_sdp: str, codecs: list[CodecName]) -> str:
        # aiortc answers with the first of our preferred codecs that the offer has.
        self.track = track = self.video.track(codecs[0])
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(_capabilities(codecs))
        _route_rtcp(transceiver.sender, track)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)  # gathers every candidate: no trickle needed
        sdp = self.pc.localDescription.sdp
        video = next(m for m in SessionDescription.parse(sdp).media if m.kind == "video")
        self.codec = next((c.name for c in video.rtp.codecs if c.name.lower() != "rtx"), None)
        if self.codec is None or self.codec.upper() != codecs[0]:
            raise OfferError(f"negotiated {self.codec} instead of {codecs[0]}")
        ext_id = playout.offered_id(offer_sdp)
        if ext_id is not None:
            answered = playout.add_to_answer(sdp, ext_id)
            if answered != sdp:
                playout.write_zero_delay(transceiver.sender, ext_id)
                sdp = answered
        return sdp

    async def went_silent(self, idle_s: float, current: Callable[[], bool]) -> bool:
        """Whether the viewer stopped sending heartbeats (gone, even if ICE has not noticed
        yet); False once the peer closes or ``current()`` says it was replaced."""
        await asyncio.sleep(idle_s)  # room for ICE, DTLS and the data channel to come up
        while current() and not self.closed:
            if time.monotonic() - self.last_seen > idle_s:
                return True
            await asyncio.sleep(min(1.0, idle_s / 4))
        return False

    def send(self, text: str) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            try:
                self.channel.send(text)
            except Exception as exc:  # a channel closing under us is not worth a crash
                log.debug("data channel send failed: %s", exc)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.track is not None:
            await self.video.release(self.track)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 5)


def _route_rtcp(sender: RTCRtpSender, track: PacketTrack) -> None:
    """Send the viewer's keyframe requests, bitrate estimates and losses to the shared encoder.

    aiortc acts on PLI, FIR and REMB only for frames it encodes itself; for pre-encoded
    packets they would be lost. Its DTLS transport calls ``_handle_rtcp_packet`` on the
    sender instance, so wrapping that one method is enough.
    """
    original = sender._handle_rtcp_packet

    async def handle(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            # Resent here, within a budget (bitrate.ResendGate), not by aiortc at any rate.
            for seq in packet.lost:
                if track.may_resend(seq):
                    await sender._retransmit(seq)
            return
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                track.keyframe_wanted()
            elif packet.fmt == RTCP_PSFB_APP:
                with contextlib.suppress(ValueError):
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                    if sender._ssrc in ssrcs:
                        track.estimate(bitrate)
        await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]
