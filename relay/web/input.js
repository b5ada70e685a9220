// Input capture for the live view: pointer, wheel, keys, paste, touch and the phone's own
// keyboard, sent as protocol v1 messages (docs/protocol.md). Positions are mapped from the
// <video> element, letterboxing included, to the page's CSS pixels.

const LINE_PX = 40;
const PAGE_PX = 800;
const TEXT_CHUNK = 1000;
const SENTINEL = " "; // the hidden field always holds something, so Backspace has a target
// With Ctrl or Cmd held, only these go to the remote page; other combinations (Ctrl+W,
// Ctrl+T, Ctrl+L, ...) stay with the person's own browser.
const EDITING_SHORTCUTS = new Set(["a", "c", "x", "z", "y", "ArrowLeft", "ArrowRight",
  "ArrowUp", "ArrowDown", "Backspace", "Delete", "Home", "End", "Enter"]);
const BROWSER_KEYS = new Set(["F5", "F11", "F12"]);
const NAMED_KEYS = new Set(["Enter", "Backspace", "Tab", "Escape", "Delete", "ArrowLeft",
  "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"]);

export function modifiers(e) {
  return (e.altKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.metaKey ? 4 : 0) | (e.shiftKey ? 8 : 0);
}

// Client coordinates to page CSS pixels; null outside the picture (the letterbox bars).
export function toPage(clientX, clientY, video, view) {
  const vw = video.videoWidth, vh = video.videoHeight;
  if (!vw || !vh) return null;
  const [pw, ph] = view && view[0] > 0 ? view : [vw, vh];
  const r = video.getBoundingClientRect();
  const scale = Math.min(r.width / vw, r.height / vh);
  const dw = vw * scale, dh = vh * scale;
  const left = r.left + (r.width - dw) / 2, top = r.top + (r.height - dh) / 2;
  const x = (clientX - left) / dw, y = (clientY - top) / dh;
  const inside = x >= 0 && x <= 1 && y >= 0 && y <= 1;
  return { x: Math.round(x * pw * 100) / 100, y: Math.round(y * ph * 100) / 100, inside };
}

export function isTouchDevice() {
  return navigator.maxTouchPoints > 0 || matchMedia("(pointer: coarse)").matches;
}

// Shift+Escape is ours, never the page's: the keyboard's way out of the page to the toolbar.
export const isLeaveKey = (e) => e.key === "Escape" && e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey;

export function attachInput({ stage, video, keyboardField, send, getView, onInteract, onLeave }) {
  let interacted = false;
  let pendingMove = null;
  let pendingTouch = null;
  const emit = (message) => {
    if (!interacted) { interacted = true; onInteract(); }
    send(message);
  };
  const flushMoves = () => {
    if (pendingMove) { emit(pendingMove); pendingMove = null; }
    if (pendingTouch) { emit(pendingTouch); pendingTouch = null; }
  };
  const position = (e) => toPage(e.clientX, e.clientY, video, getView());

  // -- mouse ----------------------------------------------------------------------------
  let buttonsDown = 0;
  stage.addEventListener("mousedown", (e) => {
    const p = position(e);
    if (!p || !p.inside) return;
    e.preventDefault();
    stage.focus({ preventScroll: true });
    flushMoves();
    buttonsDown = e.buttons;
    emit({ t: "pd", x: p.x, y: p.y, b: e.button, bs: e.buttons, c: Math.min(3, e.detail || 1), m: modifiers(e) });
  });
  window.addEventListener("mousemove", (e) => {
    if (e.sourceCapabilities && e.sourceCapabilities.firesTouchEvents) return;
    const p = position(e);
    if (!p || (!p.inside && !buttonsDown)) return;
    if (!pendingMove) requestAnimationFrame(flushMoves);
    pendingMove = { t: "pm", x: p.x, y: p.y, bs: e.buttons, m: modifiers(e) };
  });
  window.addEventListener("mouseup", (e) => {
    if (!buttonsDown) return;
    const p = position(e);
    flushMoves();
    buttonsDown = e.buttons;
    if (p) emit({ t: "pu", x: p.x, y: p.y, b: e.button, bs: e.buttons, c: Math.min(3, e.detail || 1), m: modifiers(e) });
  });
  stage.addEventListener("contextmenu", (e) => e.preventDefault());
  stage.addEventListener("wheel", (e) => {
    const p = position(e);
    if (!p || !p.inside) return;
    e.preventDefault();
    const unit = e.deltaMode === 1 ? LINE_PX : e.deltaMode === 2 ? PAGE_PX : 1;
    emit({ t: "wh", x: p.x, y: p.y, dx: e.deltaX * unit, dy: e.deltaY * unit, m: modifiers(e) });
  }, { passive: false });

  // -- keyboard (desktop): keys go to the page while the video area has focus ------------
  const key = (kind, e) => ({ t: kind, k: e.key, c: e.code, m: modifiers(e), r: e.repeat, l: e.location });
  const forward = (e) => {
    if (e.key === "Unidentified" || e.key === "Process" || e.isComposing) return false;
    if (isLeaveKey(e)) return false;
    if (BROWSER_KEYS.has(e.key)) return false;
    if ((e.ctrlKey || e.metaKey) && !EDITING_SHORTCUTS.has(e.key.length === 1 ? e.key.toLowerCase() : e.key)) return false;
    return true;
  };
  const held = new Map(); // code -> key down sent, whose key up the page still waits for
  stage.addEventListener("keydown", (e) => {
    if (isLeaveKey(e)) { e.preventDefault(); onLeave(); return; }
    if (!forward(e)) return;
    e.preventDefault();
    flushMoves();
    const down = key("kd", e);
    held.set(e.code || e.key, down);
    emit(down);
  });
  stage.addEventListener("keyup", (e) => {
    if (!forward(e)) return;
    e.preventDefault();
    held.delete(e.code || e.key);
    emit(key("ku", e));
  });
  // Focus left the page (Shift+Escape, a click on the toolbar): keys still down there go up,
  // or the page would think Shift is held for ever.
  stage.addEventListener("blur", () => {
    for (const down of held.values()) send({ ...down, t: "ku", r: false });
    held.clear();
  });
  // Ctrl/Cmd+V is left to the browser, which then hands us the clipboard's text here.
  const sendText = (text) => {
    for (let i = 0; i < text.length; i += TEXT_CHUNK) emit({ t: "tx", s: text.slice(i, i + TEXT_CHUNK) });
  };
  document.addEventListener("paste", (e) => {
    if (document.activeElement !== stage) return;
    const text = e.clipboardData && e.clipboardData.getData("text");
    if (text) { e.preventDefault(); sendText(text); }
  });

  // -- touch: taps become clicks and drags scroll, on the page's side ----------------------
  const touchPoints = (e) => {
    const out = [];
    for (const t of e.changedTouches) {
      const p = toPage(t.clientX, t.clientY, video, getView());
      if (p) out.push([t.identifier, p.x, p.y]);
    }
    return out;
  };
  const onTouch = (kind) => (e) => {
    e.preventDefault();
    const points = touchPoints(e);
    if (kind === "move") {
      if (!points.length) return;
      if (!pendingTouch) requestAnimationFrame(flushMoves);
      pendingTouch = { t: "tc", e: "move", p: points, m: modifiers(e) };
      return;
    }
    flushMoves();
    if (kind === "start" && !points.length) return;
    emit({ t: "tc", e: kind, p: points, m: modifiers(e) });
  };
  for (const [dom, kind] of [["touchstart", "start"], ["touchmove", "move"], ["touchend", "end"], ["touchcancel", "cancel"]]) {
    stage.addEventListener(dom, onTouch(kind), { passive: false });
  }

  // -- the phone's own keyboard, through a hidden text field ----------------------------
  const resetField = () => { keyboardField.value = SENTINEL; };
  resetField();
  const press = (name) => { emit({ t: "kd", k: name, c: name, m: 0 }); emit({ t: "ku", k: name, c: name, m: 0 }); };
  keyboardField.addEventListener("keydown", (e) => {
    if (e.isComposing || e.keyCode === 229 || !NAMED_KEYS.has(e.key)) return;
    e.preventDefault();
    emit(key("kd", e));
    emit(key("ku", e));
  });
  keyboardField.addEventListener("beforeinput", (e) => {
    if (e.isComposing || e.inputType === "insertCompositionText") return; // IME still composing
    if (e.inputType === "insertText" && e.data) { e.preventDefault(); sendText(e.data); }
    else if (e.inputType === "deleteContentBackward") { e.preventDefault(); press("Backspace"); }
    else if (e.inputType === "insertLineBreak" || e.inputType === "insertParagraph") { e.preventDefault(); press("Enter"); }
  });
  keyboardField.addEventListener("compositionend", (e) => {
    if (e.data) sendText(e.data);
    setTimeout(resetField, 0);
  });
  keyboardField.addEventListener("input", (e) => {
    if (e.isComposing) return;
    // Whatever slipped past beforeinput (some keyboards cannot cancel it) is sent as text.
    const extra = keyboardField.value.startsWith(SENTINEL) ? keyboardField.value.slice(1) : keyboardField.value;
    if (extra) sendText(extra);
    resetField();
  });
}
