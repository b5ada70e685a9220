"""Zero playout delay: the viewer shows each frame as soon as it is decoded.

Chrome holds received video for a smoothing delay (a render delay of 10 ms plus its jitter
estimate) unless the sender asks for none with the playout-delay RTP header extension
(http://www.webrtc.org/experiments/rtp-hdrext/playout-delay), as cloud gaming does; the
viewer's ``jitterBufferTarget = 0`` only lowers the minimum. Chrome offers the extension;
aiortc neither answers nor writes it, so the answer gets its ``a=extmap`` line here and the
sender's header-extension map writes min = max = 0 into every packet. Chrome keeps the value
until another arrives; browsers that do not offer it are left as they are.

The SDP work is pure; ``write_zero_delay`` wraps one aiortc sender's extension map (through
``aiortc_compat``).
"""

from __future__ import annotations

import re

from aiortc import RTCRtpSender
from aiortc.rtp import pack_header_extensions, unpack_header_extensions

from relay.webrtc import aiortc_compat

PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
ZERO_DELAY = bytes(3)  # 12 bits of minimum, 12 of maximum, in 10 ms units: 0 and 0
_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")


def _video_section(lines: list[str]) -> tuple[int, int] | None:
    """The [start, end) line range of the first video m-section."""
    start = next((i for i, line in enumerate(lines) if line.startswith("m=video")), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("m=")), len(lines))
    return start, end


def offered_id(offer_sdp: str) -> int | None:
    """The id the offer gives the extension in its video section, if it offers it at all."""
    lines = offer_sdp.splitlines()
    section = _video_section(lines)
    if section is None:
        return None
    for line in lines[section[0] : section[1]]:
        match = _EXTMAP.match(line)
        if match and match.group(2) == PLAYOUT_DELAY_URI:
            ext_id = int(match.group(1))
            return ext_id if 1 <= ext_id <= 14 else None  # aiortc writes one-byte headers only
    return None


def add_to_answer(answer_sdp: str, ext_id: int) -> str:
    """The answer with the extension accepted in its video section."""
    lines = answer_sdp.splitlines()
    section = _video_section(lines)
    if section is None:
        return answer_sdp
    start, end = section
    ids = {int(m.group(1)) for line in lines[start:end] if (m := _EXTMAP.match(line))}
    if ext_id in ids:
        return answer_sdp  # the id is taken by another extension: leave the answer alone
    at = max((i + 1 for i in range(start, end) if lines[i].startswith("a=extmap:")), default=end)
    lines.insert(at, f"a=extmap:{ext_id} {PLAYOUT_DELAY_URI}")
    return "\r\n".join(lines) + "\r\n"


def write_zero_delay(sender: RTCRtpSender, ext_id: int) -> None:
    """Make the sender put min = max = 0 playout delay into every RTP packet it sends."""

    def add_zero_delay(packed: tuple[int, bytes]) -> tuple[int, bytes]:
        profile, data = packed
        extensions = unpack_header_extensions(profile, data) if data else []
        result: tuple[int, bytes] = pack_header_extensions([*extensions, (ext_id, ZERO_DELAY)])
        return result

    aiortc_compat.wrap_header_extensions(sender, add_zero_delay)
