"""Click-to-photon on loopback: a click in the viewer until the viewer shows its effect.

The viewer page stamps the click when its own ``mousedown`` fires; the click travels over the
data channel to the relay and on to the source page (``Input.dispatchMouseEvent``), which flips
its colour on ``pointerdown``; the new colour is screencast, encoded, sent and decoded; the
viewer's ``requestVideoFrameCallback`` sees it. All timing is read in the viewer page.

    python benchmarks/click_to_photon.py [--clicks 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path
from urllib.parse import quote

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.first_frame import VIEWER_ARGS, create, start_relay  # noqa: E402
from relay.browser import launch_chromium  # noqa: E402

FLIP_PAGE = "data:text/html," + quote(
    "<body style='margin:0;height:100vh;background:rgb(220,0,0)'><script>"
    "let red=true;addEventListener('pointerdown',()=>{red=!red;"
    "document.body.style.background=red?'rgb(220,0,0)':'rgb(0,0,220)'})</script>"
)
MEASURE_JS = """([wantRed]) => new Promise((resolve) => {
  const v = document.getElementById('video');
  const c = document.createElement('canvas'); c.width = c.height = 8;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  let t0 = null;
  document.getElementById('stage').addEventListener('mousedown',
    () => { t0 = performance.now(); }, { once: true, capture: true });
  const check = (now) => {
    if (t0 !== null) {
      ctx.drawImage(v, 0, 0, 8, 8);
      const [r, , b] = ctx.getImageData(4, 4, 1, 1).data;
      if (wantRed ? r > 150 && b < 80 : b > 150 && r < 80) return resolve(now - t0);
    }
    v.requestVideoFrameCallback(check);
  };
  v.requestVideoFrameCallback(check);
  setTimeout(() => resolve(-1), 3000);
})"""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--port", type=int, default=8795)
    args = parser.parse_args()
    async with start_relay(args.port) as (base, _pid):
        source = await launch_chromium(start_url=FLIP_PAGE)
        viewer = await launch_chromium(extra_args=VIEWER_ARGS)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.connect_over_cdp(viewer.http_endpoint)
                page = await browser.contexts[0].new_page()
                live = await create(base, source.http_endpoint)
                await page.goto(live["liveURL"])
                await page.wait_for_function(
                    "() => window.liveRelay.state === 'live' && window.liveRelay.view"
                )
                await asyncio.sleep(1.0)
                box = await page.locator("#video").bounding_box()
                assert box is not None
                x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                times, red = [], True
                for _ in range(args.clicks):
                    red = not red
                    measure = asyncio.ensure_future(page.evaluate(MEASURE_JS, [red]))
                    await asyncio.sleep(0.05)
                    await page.mouse.click(x, y)
                    took = await measure
                    if took >= 0:
                        times.append(took)
                    else:
                        red = not red  # the flip was not seen: resynchronise
                    await asyncio.sleep(0.25)
                await browser.close()
        finally:
            await viewer.close()
            await source.close()
    if not times:
        print("no click was seen in the video")
        return
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"\nclick-to-photon on loopback, {len(times)} of {args.clicks} clicks seen")
    print("| p50 ms | p95 ms | min ms | max ms |")
    print("| --- | --- | --- | --- |")
    print(f"| {statistics.median(times):.0f} | {p95:.0f} | {times[0]:.0f} | {times[-1]:.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
