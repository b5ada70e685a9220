"""WHEP (WebRTC-HTTP Egress Protocol) peers: the viewer offers, the relay answers.

The viewer makes the offer, so aiortc answers and takes the DTLS client role, the robust
direction. The offer is checked (``sdp``) before anything is spent on it: a one-time link is
only consumed by an offer the relay can actually answer. A peer is transport only: what its
messages mean is the session's business (``relay.sessions``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence

from aiortc import RTCDataChannel, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
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
from aiortc.sdp import SessionDescription, candidate_from_sdp

from relay.errors import OfferError
from relay.video.encoding import CodecName
from relay.video.fanout import PacketTrack
from relay.video.session_video import SessionVideo
from relay.webrtc import aioice_compat, aiortc_compat, playout
from relay.webrtc.flood import FloodGate
from relay.webrtc.ice import IceServer, rtc_configuration
from relay.webrtc.network import IceNetwork
from relay.webrtc.sdp import defer_mdns_candidates, ice_credentials

log = logging.getLogger(__name__)


def _capabilities(names: list[CodecName]) -> list[RTCRtpCodecCapability]:
    caps = RTCRtpSender.getCapabilities("video").codecs
    ordered = [c for name in names for c in caps if c.name.upper() == name]
    ordered += [c for c in caps if c.name.lower() == "rtx"]
    return ordered


class ViewerPeer:
    """One peer connection to one viewer page."""

    def __init__(
        self,
        video: SessionVideo,
        ice_servers: tuple[IceServer, ...],
        on_message: Callable[[ViewerPeer, str | bytes], None],
        on_lost: Callable[[ViewerPeer], None],
        network: IceNetwork | None = None,
    ) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self.network = network
        self.video = video
        self.track: PacketTrack | None = None
        self.channel: RTCDataChannel | None = None
        self.last_seen = time.monotonic()
        self.codec: str | None = None
        self.closed = False
        self._closing: asyncio.Future[None] | None = None
        self.gate = FloodGate()  # the session decides what a flood costs
        self.kicked = False  # disconnected by the session: its messages are no longer read
        self._resolving: asyncio.Task[None] | None = None
        self._remote_ice = ("", "")
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
        self._remote_ice = ice_credentials(offer_sdp)
        aioice_compat.ICE_NETWORK.set(self.network)  # read while this task gathers
        offer_now, later = defer_mdns_candidates(offer_sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_now, "offer"))
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)  # gathers every candidate: no trickle needed
        sdp = self.pc.localDescription.sdp
        video = next(m for m in SessionDescription.parse(sdp).media if m.kind == "video")
        self.codec = next((c.name for c in video.rtp.codecs if c.name.lower() != "rtx"), None)
        if self.codec is None or self.codec.upper() != codecs[0]:
            raise OfferError(f"negotiated {self.codec} instead of {codecs[0]}")
        if later:
            self._resolving = asyncio.create_task(self.add_candidates(later))
        ext_id = playout.offered_id(offer_sdp)
        if ext_id is not None:
            answered = playout.add_to_answer(sdp, ext_id)
            if answered != sdp:
                playout.write_zero_delay(transceiver.sender, ext_id)
                sdp = answered
        return sdp

    def owns_ice(self, ufrag: str, pwd: str) -> bool:
        """Whether these are the ICE credentials of the viewer's offer: only the viewer and
        the relay know the password, so a trickle fragment carrying it comes from the viewer."""
        want_ufrag, want_pwd = self._remote_ice
        return bool(want_pwd) and (
            hmac.compare_digest(ufrag.encode(), want_ufrag.encode())
            & hmac.compare_digest(pwd.encode(), want_pwd.encode())
        )

    async def add_candidates(self, candidates: Sequence[tuple[str, str]]) -> None:
        """Candidates of the viewer as (mid, ``candidate:...``): its mDNS candidates, resolved
        after the answer has gone (see ``defer_mdns_candidates``), or trickled by WHEP
        ``PATCH``. One that cannot be used (malformed, unresolvable) is simply not used."""
        for mid, line in candidates:
            try:
                candidate = candidate_from_sdp(line.split(":", 1)[1])
                candidate.sdpMid = mid or None
                candidate.sdpMLineIndex = None if mid else 0
                await self.pc.addIceCandidate(candidate)
            except Exception as exc:  # a malformed line or a closed peer: not worth more
                log.debug("viewer candidate not added: %s", exc)

    async def went_silent(self, idle_s: float, current: Callable[[], bool]) -> bool:
        """Whether the viewer stopped sending heartbeats (gone, even if ICE has not noticed
        yet); False once the peer closes or ``current()`` says it was replaced."""
        await asyncio.sleep(idle_s)  # room for ICE, DTLS and the data channel to come up
        while current() and not self.closed:
            if self.channel is None and self.pc.connectionState == "connected":
                # A WHEP player with no data channel (a third-party client): it sends no
                # heartbeats, and ICE consent checks say whether it is still there.
                self.last_seen = time.monotonic()
            if time.monotonic() - self.last_seen > idle_s:
                return True
            await asyncio.sleep(min(1.0, idle_s / 4))
        return False

    @property
    def ready(self) -> bool:
        """Whether messages can go to the viewer now (its data channel is open)."""
        return self.channel is not None and self.channel.readyState == "open"

    def send(self, text: str) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            try:
                self.channel.send(text)
            except Exception as exc:  # a channel closing under us is not worth a crash
                log.debug("data channel send failed: %s", exc)

    async def delivered(self, timeout_s: float) -> bool:
        """Wait until what was sent on the data channel has reached the viewer (acknowledged),
        at most ``timeout_s``; whether it did."""
        deadline = time.monotonic() + timeout_s
        while self.channel is not None and not aiortc_compat.channel_delivered(self.channel):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._resolving is not None:
            self._resolving.cancel()
        if self.track is not None:
            await self.video.release(self.track)
        # A task of its own, shielded: aiortc may be closing already (its DTLS ended), and a
        # second close() waits on the first's future; cancelling that wait (a session ending
        # while a dropped viewer is let go) would cancel the future and break aiortc's close.
        self._closing = asyncio.ensure_future(self.pc.close())
        self._closing.add_done_callback(lambda f: f.cancelled() or f.exception())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._closing), 5)


def _route_rtcp(sender: RTCRtpSender, track: PacketTrack) -> None:
    """Send the viewer's keyframe requests, bitrate estimates and losses to the shared encoder
    (aiortc acts on them only for frames it encodes itself)."""

    async def handle(packet: AnyRtcpPacket) -> bool:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            # Resent here, within a budget (bitrate.ResendGate), not by aiortc at any rate.
            for seq in packet.lost:
                if track.may_resend(seq):
                    await aiortc_compat.retransmit(sender, seq)
            return True
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                track.keyframe_wanted()
            elif packet.fmt == RTCP_PSFB_APP:
                with contextlib.suppress(ValueError):
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                    if aiortc_compat.sender_ssrc(sender) in ssrcs:
                        track.estimate(bitrate)
        return False

    aiortc_compat.intercept_rtcp(sender, handle)
