"""Every use of aiortc's private members, in one place.

aiortc packetizes pre-encoded frames well, but it answers keyframe requests, bitrate estimates
and losses only for frames it encodes itself, and it cannot write the playout-delay header
extension. The relay needs all four for its shared encoding, so it adapts these members of
``RTCRtpSender`` (and, in ``relay.testing``, of ``RTCRtpReceiver``):

- ``_handle_rtcp_packet``: the DTLS transport calls it on the sender instance for each RTCP
  packet; wrapping the instance's method routes PLI, FIR, REMB and NACK to the shared encoder.
- ``_retransmit(seq)``: resends one packet from the sender's history (on the RTX stream).
- ``_ssrc``: the sender's media SSRC, to pick our own entry out of a REMB.
- ``__rtp_header_extensions_map``: its ``set()`` packs the header extensions of every packet.
- ``RTCRtpReceiver._handle_rtp_packet``: the test viewer counts packets without decoding.
- ``RTCSctpTransport._outbound_queue`` and ``._sent_queue``: whether what a data channel sent
  has been acknowledged (a ``kick`` must reach the viewer before its connection closes).

``pyproject.toml`` pins aiortc to the versions these were checked against, and
``missing_members()`` (run by the unit tests) fails loudly when an upgrade moves one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.mediastreams import VideoStreamTrack
from aiortc.rtp import AnyRtcpPacket, RtpPacket

RtcpHandler = Callable[[AnyRtcpPacket], Awaitable[bool]]
_EXT_MAP = "_RTCRtpSender__rtp_header_extensions_map"
_SENDER_METHODS = ("_handle_rtcp_packet", "_retransmit")
_SENDER_ATTRIBUTES = ("_ssrc", _EXT_MAP)


async def missing_members() -> list[str]:
    """The adapted members this aiortc lacks (empty when all is well)."""
    missing = [f"RTCRtpSender.{m}" for m in _SENDER_METHODS if not hasattr(RTCRtpSender, m)]
    if not hasattr(RTCRtpReceiver, "_handle_rtp_packet"):
        missing.append("RTCRtpReceiver._handle_rtp_packet")
    # Instance attributes exist only once a sender is built: checked on a throwaway one.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        sender = pc.addTransceiver(VideoStreamTrack(), direction="sendonly").sender
        missing += [f"RTCRtpSender.{a}" for a in _SENDER_ATTRIBUTES if not hasattr(sender, a)]
        ext_map = getattr(sender, _EXT_MAP, None)
        if ext_map is not None and not callable(getattr(ext_map, "set", None)):
            missing.append(f"RTCRtpSender.{_EXT_MAP}.set")
    finally:
        await pc.close()
    return missing


def intercept_rtcp(sender: RTCRtpSender, handler: RtcpHandler) -> None:
    """Give ``handler`` each RTCP packet for this sender first; it returns True when it dealt
    with the packet, and aiortc never sees it."""
    original = sender._handle_rtcp_packet

    async def handle(packet: AnyRtcpPacket) -> None:
        if not await handler(packet):
            await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


async def retransmit(sender: RTCRtpSender, seq: int) -> None:
    """Send packet ``seq`` again from the sender's history, if it still has it."""
    await sender._retransmit(seq)


def sender_ssrc(sender: RTCRtpSender) -> int:
    ssrc: int = sender._ssrc
    return ssrc


def wrap_header_extensions(
    sender: RTCRtpSender, wrap: Callable[[tuple[int, bytes]], tuple[int, bytes]]
) -> None:
    """Pass each packet's packed header extensions (profile, data) through ``wrap``."""
    ext_map: Any = getattr(sender, _EXT_MAP)
    original = ext_map.set

    def set_extensions(values: Any) -> tuple[int, bytes]:
        return wrap(original(values))

    ext_map.set = set_extensions


def intercept_rtp(
    receiver: RTCRtpReceiver, handler: Callable[[RtpPacket, int], Coroutine[Any, Any, None]]
) -> None:
    """Take every RTP packet of this receiver instead of aiortc (no reassembly, no decode)."""
    receiver._handle_rtp_packet = handler  # type: ignore[method-assign,assignment]


def channel_delivered(channel: RTCDataChannel) -> bool:
    """Whether everything sent on ``channel`` has left and been acknowledged (or the channel
    is closed, so that nothing more will)."""
    if channel.readyState != "open":
        return True
    transport = channel.transport
    return (
        channel.bufferedAmount == 0
        and not getattr(transport, "_outbound_queue", ())
        and not getattr(transport, "_sent_queue", ())
    )
