"""The viewer's SDP offer: checked before anything is spent on it, and the codecs to answer
with. Pure code; the limits here are what a WHEP offer may carry."""

from __future__ import annotations

from typing import Literal

from aiortc.sdp import SessionDescription

from relay.errors import OfferError
from relay.video.encoding import CodecName

Codec = Literal["auto", "h264", "vp8"]  # the RELAY_CODEC setting
CODECS: tuple[Codec, ...] = ("auto", "h264", "vp8")
MAX_SDP_BYTES = 64 * 1024
SDP_CONTENT_TYPE = "application/sdp"


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
    if video[0].ice is None or not video[0].ice.usernameFragment or not video[0].dtls:
        raise OfferError("offer lacks ICE credentials or a DTLS fingerprint")
    return {c.name.upper() for c in video[0].rtp.codecs}


_PREFERENCE: dict[Codec, list[CodecName]] = {
    "auto": ["H264", "VP8"],
    "h264": ["H264"],
    "vp8": ["VP8"],
}


def pick_codecs(offered: set[str], codec: Codec) -> list[CodecName]:
    """Codec names to prefer, best first, limited to what the viewer can decode."""
    prefer: dict[Codec, list[CodecName]] = {
        "auto": ["H264", "VP8"],
        "h264": ["H264"],
        "vp8": ["VP8"],
    }
    wanted = prefer[codec]
    usable = [name for name in wanted if name in offered]
    if not usable:
        need = " or ".join(wanted)
        raise OfferError(f"the viewer's browser cannot decode {need}")
    return usable


def codecs_for(offer: str, codec: Codec) -> list[CodecName]:
    """The codecs to answer ``offer`` with; raises ``OfferError`` for an unusable offer."""
    return pick_codecs(offered_video_codecs(offer), codec)
