"""The viewer page as served: its first script inlined, and allowed by its hash alone."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from relay.config import load_settings
from relay.http.viewer_page import build_viewer_page
from relay.tokens import new_token


def test_the_first_script_is_inlined_before_the_stylesheet_and_allowed_by_its_hash() -> None:
    page = build_viewer_page(load_settings(env={}))
    scripts = re.findall(r"<script>(.*?)</script>", page.html, re.S)
    assert len(scripts) == 1  # the only inline script that runs
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert page.script_src == f"'sha256-{digest}'"
    csp = page.csp("'self'")
    assert f"script-src 'self' 'sha256-{digest}';" in csp and "unsafe-inline" not in csp
    # It runs before the stylesheet is even asked for, after the configuration it reads.
    html = page.html
    assert html.index("relay-config") < html.index(scripts[0]) < html.index("viewer.css")
    assert "{{" not in page.for_link("x")


def test_a_links_page_has_its_picture_as_the_videos_poster() -> None:
    page = build_viewer_page(load_settings(env={}))
    token = new_token()
    assert f'<video id="video" poster="{token}/picture"' in page.for_link(token)
    # Nothing else goes into the page: a reloaded tab's address, or anything not a token's shape.
    for other in ("", "session", '"><script>alert(1)</script>', token + "x"):
        assert '<video id="video" poster=""' in page.for_link(other)


def test_a_script_that_would_end_its_element_is_refused(tmp_path: Path) -> None:
    web = Path(__file__).resolve().parents[2] / "relay" / "web"
    for name in ("index.html", "messages.json"):
        (tmp_path / name).write_text((web / name).read_text())
    (tmp_path / "early.js").write_text("const s = '</script>';")
    with pytest.raises(ValueError, match="must not contain"):
        build_viewer_page(load_settings(env={"RELAY_WEB_DIR": str(tmp_path)}))
