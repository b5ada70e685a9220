// Shared by the scenario pages: a 16-block barcode at the top left carries the page's state
// number k (15 bits and a parity bit), and the wall-clock time of every change is kept, so a
// viewer can tell which state a decoded frame shows and how long it took to arrive.
(() => {
  const bar = document.createElement("canvas");
  bar.width = 16; bar.height = 1;
  bar.style.cssText = "position:fixed;left:0;top:0;z-index:2147483647;image-rendering:pixelated;" +
    "pointer-events:none";
  const ctx = bar.getContext("2d");
  const bench = { k: 0, changes: [], stopped: false };
  function place() {
    const bw = innerWidth / 32;
    bar.style.width = `${16 * bw}px`;
    bar.style.height = `${bw}px`;
  }
  function draw(k) {
    const bits = k & 0x7fff;
    let parity = 0;
    for (let i = 0; i < 15; i++) parity ^= (bits >> i) & 1;
    for (let i = 0; i < 16; i++) {
      const on = i < 15 ? (bits >> (14 - i)) & 1 : parity;
      ctx.fillStyle = on ? "#fff" : "#000";
      ctx.fillRect(i, 0, 1, 1);
    }
  }
  bench.mark = (k) => {
    bench.k = k;
    draw(k);
    bench.changes[k] = performance.timeOrigin + performance.now();
  };
  // Drives a page through states 1, 2, 3, ...: state(k) draws state k; schedule(step) says
  // when the next comes. renderState(n) stops it and shows state n (the Y-PSNR reference).
  bench.drive = (state, schedule) => {
    let k = 0;
    const step = () => {
      if (bench.stopped) return;
      k += 1; state(k); bench.mark(k);
      schedule(step);
    };
    window.renderState = (n) => { bench.stopped = true; state(n); bench.mark(n); };
    document.addEventListener("DOMContentLoaded", () => schedule(step));
  };
  addEventListener("resize", place);
  document.addEventListener("DOMContentLoaded", () => {
    document.body.appendChild(bar);
    place();
    bench.mark(0);
  });
  window.__bench = bench;
})();
