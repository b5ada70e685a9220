// Injected into every viewer page the benchmarks open (live-relay's own viewer and the
// baselines' harness). For each decoded frame it reads the source page's barcode (state k);
// the first time a state shows up is when the viewer saw that change. A few whole frames are
// kept as luma planes for Y-PSNR against the source page re-rendered at the same state.
(() => {
  const m = { seen: {}, frames: 0, firstMs: null, samples: [], clicks: [], bytes: 0, received: 0,
    sampleFrom: Infinity, sampleGapMs: 700, maxSamples: 6, lastSample: 0,
    lastFrameMs: 0, freezes: [] };  // freezes: [wall ms, how long] of gaps over 500 ms
  window.__m = m;
  const strip = document.createElement("canvas");
  const sctx = strip.getContext("2d", { willReadFrequently: true });
  const full = document.createElement("canvas");
  const fctx = full.getContext("2d", { willReadFrequently: true });

  function readState(src, w) {
    const bw = w / 32;
    strip.width = Math.max(16, Math.ceil(16 * bw));
    strip.height = Math.max(1, Math.ceil(bw));
    sctx.drawImage(src, 0, 0, strip.width, strip.height, 0, 0, strip.width, strip.height);
    const data = sctx.getImageData(0, 0, strip.width, strip.height).data;
    const y = Math.floor(bw / 2);
    let k = 0, parity = 0;
    for (let i = 0; i < 16; i++) {
      const o = (y * strip.width + Math.floor((i + 0.5) * bw)) * 4;
      const on = data[o] + data[o + 1] + data[o + 2] > 384 ? 1 : 0;
      if (i < 15) { k = (k << 1) | on; parity ^= on; } else if (on !== parity) return null;
    }
    return k;
  }

  function luma(src, w, h) {
    full.width = w; full.height = h;
    fctx.drawImage(src, 0, 0, w, h);
    const rgba = fctx.getImageData(0, 0, w, h).data;
    const y = new Uint8Array(w * h);
    for (let i = 0, j = 0; j < y.length; i += 4, j++) {
      y[j] = Math.round(0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2]);
    }
    return y;
  }

  function lumaBase64(src, w, h) {
    const y = luma(src, w, h);
    let s = "";
    for (let i = 0; i < y.length; i += 0x8000) s += String.fromCharCode(...y.subarray(i, i + 0x8000));
    return btoa(s);
  }

  // Sharpness runs (window.__sharpKeep set before the page loads): the luma of every frame
  // shown, at most one per 30 ms plus the last of a burst, timed like the frame; scored later
  // against lossless screenshots of the source, so time-to-sharp is read off what was shown.
  const sharp = { frames: [], last: 0, timer: 0, max: 240 };
  m.sharp = sharp;
  function keep(src, w, h, wallMs) {
    sharp.last = wallMs;
    if (sharp.frames.length >= sharp.max) sharp.frames.shift();
    sharp.frames.push({ t: wallMs, w, h, y: luma(src, w, h) });
  }
  sharp.sizes = () => [...new Set(sharp.frames.map((f) => `${f.w}x${f.h}`))];
  // [[time, dB], ...] of the frames shown from fromMs on, against references by frame size:
  // {"WxH": [base64 luma of the region, x, y, w, h]} (the region: the whole frame, or the part
  // of the page a scenario is about).
  sharp.score = (refs, fromMs) => {
    const decoded = {};
    for (const [size, [b64, ...rect]] of Object.entries(refs)) {
      decoded[size] = [Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)), ...rect];
    }
    const out = [];
    for (const f of sharp.frames) {
      if (f.t < fromMs || !decoded[`${f.w}x${f.h}`]) continue;
      const [ref, x0, y0, w, h] = decoded[`${f.w}x${f.h}`];
      let se = 0;
      for (let y = 0; y < h; y++) {
        for (let x = 0, i = (y0 + y) * f.w + x0, j = y * w; x < w; x++, i++, j++) {
          const d = f.y[i] - ref[j]; se += d * d;
        }
      }
      const mse = se / (w * h);
      out.push([f.t, mse === 0 ? 99 : 10 * Math.log10(65025 / mse)]);
    }
    return out;
  };

  m.onFrame = (src, w, h, wallMs) => {
    if (!w || !h) return;
    m.frames += 1;
    if (m.lastFrameMs && wallMs - m.lastFrameMs > 500) m.freezes.push([wallMs, wallMs - m.lastFrameMs]);
    m.lastFrameMs = wallMs;
    if (window.__sharpKeep) {
      clearTimeout(sharp.timer);
      if (wallMs - sharp.last >= 30) keep(src, w, h, wallMs);
      else sharp.timer = setTimeout(() => keep(src, w, h, wallMs), 35);
    }
    if (m.firstMs === null) m.firstMs = wallMs - performance.timeOrigin;
    const k = readState(src, w);
    if (k === null) return;
    if (!(k in m.seen)) m.seen[k] = wallMs;
    if (wallMs >= m.sampleFrom && m.samples.length < m.maxSamples &&
        wallMs - m.lastSample >= m.sampleGapMs) {
      m.lastSample = wallMs;
      // The state is read again off the very picture whose luma is kept: a <video> can move to
      // its next frame between two draws of it, and a sample would then be scored against
      // the state before.
      const y = lumaBase64(src, w, h);
      const drawn = readState(full, w);
      if (drawn !== null) m.samples.push({ k: drawn, w, h, y });
    }
  };

  function watchVideo(video) {
    const onFrame = (now, meta) => {
      m.onFrame(video, meta.width, meta.height, performance.timeOrigin + now);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }
  document.addEventListener("DOMContentLoaded", () => {
    const video = document.querySelector("video");
    if (video) watchVideo(video);
  });
  // live-relay's viewer shows the page's picture (its video's poster) until the video has a
  // frame: when that is painted, as the browser reports it (Element Timing).
  m.pictureMs = null;
  if (PerformanceObserver.supportedEntryTypes.includes("element")) {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (entry.identifier === "picture" && m.pictureMs === null) {
          m.pictureMs = entry.renderTime || entry.loadTime;
        }
      }
    }).observe({ type: "element", buffered: true });
  }
  // Presses, in order: the click benchmark's clicks, then its keys.
  const pressed = () => m.clicks.push(performance.timeOrigin + performance.now());
  addEventListener("mousedown", pressed, true);
  addEventListener("keydown", (e) => { if (!e.repeat) pressed(); }, true);
})();
