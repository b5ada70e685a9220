"""Zero playout delay: the SDP answer takes Chrome's offered extension, and the sender writes
it into every RTP packet."""

from __future__ import annotations

import struct

from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import RtpPacket, unpack_header_extensions

from relay.webrtc.playout import PLAYOUT_DELAY_URI, add_to_answer, offered_id, write_zero_delay

# The video section of a Chrome 156 offer, trimmed.
OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=extmap:5 urn:ietf:params:rtp-hdrext:sdes:mid",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:toffset",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        f"a=extmap:5 {PLAYOUT_DELAY_URI}",
        "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=recvonly",
        "a=rtpmap:96 H264/90000",
        "",
    ]
)
ANSWER = "\r\n".join(
    [
        "v=0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=sendonly",
        "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=rtpmap:96 H264/90000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "",
    ]
)


def test_the_offered_id_is_read_from_the_video_section_only() -> None:
    assert offered_id(OFFER) == 5
    assert offered_id(OFFER.replace(f"a=extmap:5 {PLAYOUT_DELAY_URI}", "")) is None
    assert offered_id(OFFER.replace("a=extmap:5 http", "a=extmap:15 http")) is None  # 2-byte
    assert offered_id(OFFER.replace("a=extmap:5 http", "a=extmap:5/recvonly http")) == 5
    assert offered_id("v=0\r\n") is None


def test_the_answer_accepts_it_after_its_other_extensions() -> None:
    lines = add_to_answer(ANSWER, 5).split("\r\n")
    at = lines.index(f"a=extmap:5 {PLAYOUT_DELAY_URI}")
    assert lines[at - 1].startswith("a=extmap:2 ") and lines[at + 1].startswith("a=rtpmap")
    assert add_to_answer(ANSWER, 9) == ANSWER  # that id is the answer's mid already
    assert add_to_answer("v=0\r\n", 5) == "v=0\r\n"


async def test_every_packet_carries_zero_delay_beside_aiortcs_own_extensions() -> None:
    pc = RTCPeerConnection()
    sender = pc.addTransceiver("video", direction="sendonly").sender
    write_zero_delay(sender, 5)
    ext_map = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
    abs_send_time = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
    ext_map.configure(
        RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(2, abs_send_time)])
    )
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=2)
    packet.extensions.abs_send_time = 12345
    data = packet.serialize(ext_map)
    assert data[0] & 0x10  # the X bit: a header extension follows the 12-byte header
    profile, words = struct.unpack_from("!HH", data, 12)
    extensions = unpack_header_extensions(profile, data[16 : 16 + 4 * words])
    assert (5, b"\x00\x00\x00") in extensions
    assert len(extensions) == 2  # abs-send-time, which aiortc wrote, is still there
    await pc.close()
