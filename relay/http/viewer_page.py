"""The viewer page as served: ``index.html`` with its configuration and its first script in it.

The first script (``early.js``) makes the first connection while the rest of the page loads
(see its header). Inlined at the top of the page it runs at once, without waiting for the
stylesheet and the modules to arrive: on a phone's link each of those is a round trip the
first frame no longer waits for. The page's Content-Security-Policy allows exactly that
script, by its hash, and no other inline script.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from relay.config import Settings
from relay.tokens import looks_like_token

__all__ = ["ViewerPage", "build_viewer_page"]

CONFIG_MARK = "{{CONFIG}}"
EARLY_MARK = "{{EARLY_JS}}"
PICTURE_MARK = "{{PICTURE}}"


@dataclass(frozen=True)
class ViewerPage:
    html: str  # with PICTURE_MARK where a link's picture goes
    script_src: str  # the CSP source that allows the inline script: 'sha256-...'

    def for_link(self, token: str) -> str:
        """The page for a link: its video's poster is the page's picture (``picture``),
        asked for as the page is parsed and shown until the video has a frame, without a
        script. Anything but a token's shape gets no poster (a reloaded tab's address is
        ``/live/``; ``early.js`` asks for its picture with the viewer's credential)."""
        picture = f"{token}/picture" if looks_like_token(token) else ""
        return self.html.replace(PICTURE_MARK, picture)

    def csp(self, frame_ancestors: str) -> str:
        return (
            f"default-src 'self'; script-src 'self' {self.script_src}; style-src 'self'; "
            "img-src 'self' data: blob:; connect-src 'self'; media-src 'self' blob:; "
            f"base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
        )


def build_viewer_page(settings: Settings) -> ViewerPage:
    html = (settings.web_dir / "index.html").read_text()
    early = (settings.web_dir / "early.js").read_text()
    if "</script" in early.lower():
        raise ValueError("early.js must not contain </script: it is inlined into the page")
    config = {
        # STUN/TURN servers are fetched with the link (GET /live/{token}/config): never in
        # the page, which anyone can load, and TURN credentials are minted per viewer.
        "iceConfig": settings.ice.viewers_need_servers,
        # The viewer's words, in every language it speaks: in the page, so no extra request.
        "messages": json.loads((settings.web_dir / "messages.json").read_text()),
    }
    digest = base64.b64encode(hashlib.sha256(early.encode()).digest()).decode()
    # </ cannot end the script element from inside JSON once escaped.
    html = html.replace(CONFIG_MARK, json.dumps(config).replace("</", "<\\/"))
    return ViewerPage(html.replace(EARLY_MARK, early), f"'sha256-{digest}'")
