"""The viewer's SDP offer: checked before anything is spent on it, and the codecs to answer
with. Pure code; the limits here are what a WHEP offer may carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiortc.sdp import SessionDescription

from relay.errors import OfferError
from relay.video.encoding import CodecName

Codec = Literal["auto", "h264", "vp8"]  # the RELAY_CODEC setting
CODECS: tuple[Codec, ...] = ("auto", "h264", "vp8")
MAX_SDP_BYTES = 64 * 1024
MAX_MEDIA_SECTIONS = 8  # a viewer offers video, a data channel and perhaps audio
SDP_CONTENT_TYPE = "application/sdp"


def offered_video_codecs(sdp: str) -> set[str]:
    """Check the offer's shape and return the video codec names it accepts (upper case)."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise OfferError("offer is too large")
    if sum(1 for line in sdp.splitlines() if line.startswith("m=")) > MAX_MEDIA_SECTIONS:
        raise OfferError(f"offer has more than {MAX_MEDIA_SECTIONS} media sections")
    try:
        desc = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever the bad line provokes
        raise OfferError("offer is not valid SDP") from exc
    video = [m for m in desc.media if m.kind == "video"]
    if not video:
        raise OfferError("offer has no video section")
    if video[0].direction not in ("recvonly", "sendrecv"):
        raise OfferError("offer does not receive video")
    dtls = video[0].dtls
    if video[0].ice is None or not video[0].ice.usernameFragment or not video[0].ice.password:
        raise OfferError("offer lacks ICE credentials")
    if dtls is None or not dtls.fingerprints:
        raise OfferError("offer lacks a DTLS fingerprint")
    return {c.name.upper() for c in video[0].rtp.codecs}


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


MDNS_SUFFIX = ".local"


def defer_mdns_candidates(offer: str) -> tuple[str, list[tuple[str, str]]]:
    """The offer without its mDNS host candidates, and those candidates as (mid, candidate).

    Browsers hide their host addresses behind ``.local`` names, and aiortc resolves each one
    before ``setRemoteDescription`` returns: about a second when nobody answers the query
    (the usual case: the relay is not on the viewer's LAN). The answer need not wait for it:
    the viewer's own checks reach the relay and teach it the viewer's address (a peer
    reflexive candidate), and the names can still be resolved afterwards, as trickled
    candidates. ``end-of-candidates`` goes too, so candidates may still be added.
    """
    kept, deferred, mid = [], [], ""
    for line in offer.splitlines():
        if line.startswith("m="):
            mid = ""
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :].strip()
        elif line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) > 4 and fields[4].lower().endswith(MDNS_SUFFIX):
                deferred.append((mid, line[len("a=") :]))
                continue
        elif line.strip() == "a=end-of-candidates":
            continue
        kept.append(line)
    if not deferred:
        return offer, []
    return "\r\n".join(kept) + "\r\n", deferred


TRICKLE_CONTENT_TYPE = "application/trickle-ice-sdpfrag"
MAX_TRICKLE_BYTES = 16 * 1024
MAX_TRICKLE_CANDIDATES = 64


@dataclass(frozen=True)
class TrickleFragment:
    """A WHEP ``PATCH`` body (RFC 8840's SDP fragment): the ICE credentials it names and its
    candidates as (mid, ``candidate:...``)."""

    ufrag: str
    pwd: str
    candidates: tuple[tuple[str, str], ...]


def parse_trickle(text: str) -> TrickleFragment:
    """Parse a trickle fragment; raises ``OfferError`` for anything that is not one."""
    if len(text.encode()) > MAX_TRICKLE_BYTES:
        raise OfferError("the fragment is too large")
    ufrag = pwd = mid = ""
    candidates: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("a=ice-ufrag:"):
            ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=ice-pwd:"):
            pwd = line[len("a=ice-pwd:") :]
        elif line.startswith("m="):
            mid = ""
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        elif line.startswith("a=candidate:"):
            if len(line.split()) < 8:
                raise OfferError("a candidate line is malformed")
            candidates.append((mid, line[len("a=") :]))
        elif line and not line.startswith(("a=", "m=", "c=")):
            raise OfferError("not an SDP fragment")
    if not ufrag or not pwd:
        raise OfferError("the fragment lacks a=ice-ufrag and a=ice-pwd")
    if len(candidates) > MAX_TRICKLE_CANDIDATES:
        raise OfferError(f"at most {MAX_TRICKLE_CANDIDATES} candidates per fragment")
    return TrickleFragment(ufrag, pwd, tuple(candidates))


def ice_credentials(sdp: str) -> tuple[str, str]:
    """The (ufrag, pwd) of an SDP's first media section that has them, or empty strings."""
    ufrag = pwd = ""
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:") and not ufrag:
            ufrag = line[len("a=ice-ufrag:") :].strip()
        elif line.startswith("a=ice-pwd:") and not pwd:
            pwd = line[len("a=ice-pwd:") :].strip()
    return ufrag, pwd
