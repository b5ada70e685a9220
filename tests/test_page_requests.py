"""What the page asks of the person beyond clicks and keys: files from their device, text
copied out to their clipboard, dates, times and colours picked with their device's controls.
The source is a remote CDP browser (the relay reaches it by its WebSocket address only)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Page

from relay.http.app import MANAGER, RunningServer
from relay.sessions.session import LiveSession
from relay.testing.pages import SourcePage, create_live, eventually, local_site
from relay.testing.viewer import ViewerBrowser, wait_playing

from .conftest import StartRelay
from .test_control import centre, settled, to_client, wait_source

pytestmark = pytest.mark.timeout(120)

# A secure context (http://127.0.0.1), so the page may hash with crypto.subtle and use the
# clipboard API, as real sites do.
PAGE = """<!doctype html><meta name=viewport content="width=device-width,initial-scale=1">
<style>body{margin:0;padding:24px;font:15px sans-serif}input,button{display:block;margin:0 0 24px;
font-size:15px;height:44px}</style>
<input id=one type=file accept="image/*,.pdf" capture=environment>
<input id=many type=file multiple>
<p id=code>RECOVERY-CODE-4711</p><button id=copy>Copy the code</button>
<input id=day type=date min=2026-01-01 max=2027-12-31><input id=hue type=color value="#00ff00">
<script>
window.events = [];
const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
for (const id of ['one', 'many']) {
  const el = document.getElementById(id);
  el.addEventListener('input', () => events.push(id + ':input'));
  el.addEventListener('cancel', () => events.push(id + ':cancel'));
  el.addEventListener('change', async () => {
    events.push(id + ':change');
    window.got = await Promise.all(Array.from(el.files, async (f) => ({
      name: f.name, type: f.type, size: f.size, sha: hex(await crypto.subtle.digest('SHA-256',
      await f.arrayBuffer()))})));
  });
}
for (const id of ['day', 'hue']) {
  const el = document.getElementById(id);
  el.addEventListener('change', () => events.push(id + ':' + el.value));
}
document.getElementById('copy').addEventListener('click', async () => {
  await navigator.clipboard.writeText('COPIED-BY-BUTTON-99');
  events.push('copy:resolved');
});
window.ready = true;
</script>"""


@pytest.fixture
async def site_url() -> AsyncIterator[str]:
    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async with local_site({"/form": page}) as base:
        yield f"{base}/form"


async def open_page(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser, url: str, phone: bool = False
) -> tuple[Page, LiveSession]:
    await source.session.send("Page.navigate", {"url": url})
    await wait_source(source, "window.ready === true")
    live = await create_live(relay, source)
    session = relay.app[MANAGER].sessions[live["id"]]
    page = await (viewer.open_phone() if phone else viewer.open_sized(1280, 800))
    await page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=relay.base_url
    )
    await page.goto(live["liveURL"])
    await wait_playing(page)
    await settled(page, source)
    await eventually(lambda: session.assist.agent.installed and session.assist.files.enabled)
    return page, session


async def press_on(page: Page, source: SourcePage, selector: str, phone: bool = False) -> None:
    where = await to_client(page, *await centre(source, selector))
    if phone:
        await page.touchscreen.tap(*where)
    else:
        await page.mouse.click(*where)


def sample(tmp_path: Path, name: str, size: int) -> tuple[Path, str]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_a_file_from_the_persons_device_reaches_the_pages_input_intact(
    device: str,
    relay: RunningServer,
    source: SourcePage,
    viewer: ViewerBrowser,
    site_url: str,
    tmp_path: Path,
) -> None:
    phone = device == "phone"
    page, session = await open_page(relay, source, viewer, site_url, phone)
    await press_on(page, source, "#one", phone)
    await page.wait_for_selector("#file-dialog[open]")
    assert await page.get_attribute("#file-input", "accept") == "image/*,.pdf"
    assert await page.get_attribute("#file-input", "capture") == "environment"  # the camera
    assert not await page.eval_on_selector("#file-input", "i => i.multiple")
    path, digest = sample(tmp_path, "scan of my ID.pdf", 1024 * 1024)
    await page.set_input_files("#file-input", path)
    got = await wait_source(source, "window.got")
    assert got == [
        {"name": "scan of my ID.pdf", "type": "application/pdf", "size": 1024 * 1024,
         "sha": digest}
    ]  # fmt: skip
    assert await source.evaluate("window.events") == ["one:input", "one:change"]
    await page.wait_for_selector("#file-dialog", state="hidden")
    await page.wait_for_selector("#note:not([hidden])")
    assert "scan of my ID.pdf" in await page.inner_text("#note")
    assert session.assist.files.delivered == 1 and session.life.interacted
    await page.screenshot(path=str(tmp_path / f"upload-{device}.png"))
    print(f"\nviewer after the upload: {tmp_path / f'upload-{device}.png'}")


async def test_several_files_and_a_cancel(
    relay: RunningServer,
    source: SourcePage,
    viewer: ViewerBrowser,
    site_url: str,
    tmp_path: Path,
) -> None:
    page, session = await open_page(relay, source, viewer, site_url)
    await press_on(page, source, "#many", False)
    await page.wait_for_selector("#file-dialog[open]")
    assert await page.eval_on_selector("#file-input", "i => i.multiple")
    files = [sample(tmp_path, f"page-{n}.txt", size) for n, size in enumerate((0, 70_000, 5))]
    await page.set_input_files("#file-input", [p for p, _ in files])
    got = await wait_source(source, "window.got")
    assert [(f["name"], f["size"], f["sha"]) for f in got] == [
        (p.name, p.stat().st_size, digest) for p, digest in files
    ]
    # Chosen again, and this time the person changes their mind.
    await source.evaluate("window.events = []")
    await press_on(page, source, "#one", False)
    await page.wait_for_selector("#file-dialog[open]")
    await page.click("#file-cancel")
    assert await wait_source(source, "window.events.length && window.events") == ["one:cancel"]
    assert session.assist.files.pending is None and session.status == "live"


async def test_too_large_and_bad_uploads_get_a_clear_refusal(
    start_relay: StartRelay,
    source: SourcePage,
    viewer: ViewerBrowser,
    site_url: str,
    tmp_path: Path,
) -> None:
    relay = await start_relay(max_upload_mb=0.5)
    page, session = await open_page(relay, source, viewer, site_url)
    await press_on(page, source, "#one", False)
    await page.wait_for_selector("#file-dialog[open]")
    assert "512 KB" in await page.inner_text("#file-hint")
    path, _ = sample(tmp_path, "big.bin", 600 * 1024)
    await page.set_input_files("#file-input", path)
    await page.wait_for_function(
        "document.getElementById('file-status').textContent.includes('Too large')"
    )
    assert session.assist.files.upload is None  # the viewer refused before sending a byte
    # A viewer that sends anyway: announced too large, then bytes nobody asked for, then more
    # bytes than announced. Each is refused; the session goes on.
    chooser = session.assist.files.pending
    assert chooser is not None
    before = session.bad_messages
    send = "(m) => window.liveRelay.channel.send(m)"
    await page.evaluate(
        f"({send})(JSON.stringify({{t: 'file', id: {chooser.id}, "
        "f: [{n: 'big.bin', s: 600 * 1024, m: ''}]}))"
    )
    await page.evaluate(f"({send})(new Uint8Array(1000).buffer)")
    await eventually(lambda: session.bad_messages > before)
    await page.evaluate(
        f"({send})(JSON.stringify({{t: 'file', id: {chooser.id}, f: [{{n: 'a', s: 10, m: ''}}]}}))"
    )
    await page.evaluate(f"({send})(new Uint8Array(11).buffer)")
    await eventually(lambda: session.assist.files.upload is None)
    await page.evaluate(f"({send})(JSON.stringify({{t: 'file', id: 1, f: 'nope'}}))")
    await eventually(lambda: session.bad_messages > before + 1)
    assert session.status == "live" and await source.evaluate("window.got") is None
    # And a good one still goes through.
    small, digest = sample(tmp_path, "small.png", 2000)
    await page.set_input_files("#file-input", small)
    got = await wait_source(source, "window.got")
    assert got[0]["sha"] == digest and got[0]["type"] == "image/png"


async def test_a_copy_in_the_page_reaches_the_persons_clipboard(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser, site_url: str
) -> None:
    page, _session = await open_page(relay, source, viewer, site_url)
    # Ctrl+C on a selection.
    await source.evaluate("getSelection().selectAllChildren(document.getElementById('code'))")
    await page.focus("#stage")
    await page.keyboard.press("Control+c")
    await page.wait_for_selector("#note:not([hidden])")
    assert "Copied" in (await page.inner_text("#note")).splitlines()
    assert await page.evaluate("navigator.clipboard.readText()") == "RECOVERY-CODE-4711"
    # The page's own copy button (navigator.clipboard.writeText): its promise resolves too.
    await press_on(page, source, "#copy", False)
    await page.wait_for_function(
        "navigator.clipboard.readText().then((t) => t === 'COPIED-BY-BUTTON-99')", polling=100
    )
    assert "copy:resolved" in await wait_source(source, "window.events")


async def test_where_the_browser_refuses_the_copied_text_is_shown_to_copy_by_hand(
    relay: RunningServer, source: SourcePage, viewer: ViewerBrowser, site_url: str
) -> None:
    page, _session = await open_page(relay, source, viewer, site_url)
    await page.context.clear_permissions()
    await page.evaluate(
        "() => { navigator.clipboard.writeText = () => Promise.reject(new Error('denied')); }"
    )
    await press_on(page, source, "#copy", False)
    await page.wait_for_selector("#copy-dialog[open]")
    assert await page.input_value("#copy-text") == "COPIED-BY-BUTTON-99"
    assert await page.evaluate("document.activeElement.id") == "copy-text"  # selected, ready
    await page.click("#copy-close")
    await page.wait_for_selector("#copy-dialog", state="hidden")


@pytest.mark.parametrize(
    ("selector", "kind", "value"), [("#day", "date", "2026-12-24"), ("#hue", "color", "#ff8800")]
)
async def test_date_and_colour_fields_are_picked_with_the_persons_own_control(
    selector: str,
    kind: str,
    value: str,
    relay: RunningServer,
    source: SourcePage,
    viewer: ViewerBrowser,
    site_url: str,
) -> None:
    page, session = await open_page(relay, source, viewer, site_url)
    await press_on(page, source, selector, False)
    await page.wait_for_selector("#pick-dialog[open]")
    assert await page.is_hidden("#pick-select")
    assert await page.get_attribute("#pick-value", "type") == kind
    if kind == "date":
        assert await page.get_attribute("#pick-value", "min") == "2026-01-01"
    else:
        assert await page.input_value("#pick-value") == "#00ff00"
    await page.fill("#pick-value", value)
    await page.click("#pick-ok")
    assert await wait_source(source, "window.events.length && window.events") == [
        f"{selector[1:]}:{value}"
    ]
    await page.wait_for_selector("#pick-dialog", state="hidden")
    assert session.status == "live"
