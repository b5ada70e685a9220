// live-relay viewer: WHEP (the page offers, the relay answers), a heartbeat over the data
// channel, reconnection with the credential the first connect handed out, and a goodbye when
// the tab closes. No framework, no build step.

import { fileChooser } from "./files.js";
import { chooseLanguage, translatePage, translator } from "./i18n.js";
import { attachInput, isTouchDevice } from "./input.js";

const config = JSON.parse(document.getElementById("relay-config").textContent || "{}");
const $ = (id) => document.getElementById(id);
const video = $("video");
// Every word the person reads comes from the message table, in their browser's language.
const MESSAGES = config.messages || {};
const lang = chooseLanguage(MESSAGES, navigator.languages || [navigator.language]);
const t = translator(MESSAGES, lang);
document.documentElement.lang = lang;
translatePage(document, t);

const HEARTBEAT_MS = 1000;
const PREFERENCES_WAIT_MS = 2000;
// No answer to our pings for this long means the path is dead, well before ICE says so
// (Chrome takes about 30 s to declare a silent connection failed).
const PONG_TIMEOUT_MS = 3000;
// Between tries to reconnect, and to send Done / Can't complete until the relay has it.
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 3000];
// Said to screen readers when this much time is left (seconds), once each.
const TIME_WARNINGS_S = [300, 60];
const NOTE_MS = 4000;

// The token lives only in this module: it leaves the address bar (and so history, bookmarks
// and screenshots) as soon as the page has read it.
const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
// A reload of this tab resumes the session: the viewer session's URL and credential stay in
// this tab's sessionStorage (never in another tab, never after the session ends).
const SAVED = "live-relay:viewer";
const embedded = new URLSearchParams(location.search).get("embed") === "1";
history.replaceState(null, "", "./");
if (embedded) document.body.classList.add("embed");
const touch = isTouchDevice();
document.body.classList.toggle("touch", touch);

// The host page of an iframe hears how things go, without polling. No secrets in these.
function tellParent(type, detail = {}) {
  if (window.parent !== window) window.parent.postMessage({ type: `live-relay:${type}`, ...detail }, "*");
}

const viewer = {
  state: "connecting", reason: null, pc: null, channel: null, endsAt: null, view: null,
  interactable: true, reconnects: 0, rttMs: null, nav: null, pongs: 0, field: null,
  preferencesSent: 0,
};
window.liveRelay = viewer; // read-only view for the host page and tests: no secrets in it

let resource = null;   // URL of our WHEP session, from the Location header
let credential = null; // reconnect credential, from the first answer
let heartbeat = null;
let lastPong = 0;
let reconnecting = false;
let kicked = false;
// The tab is going away (pagehide): its connection closing must not start a reconnection,
// which would take the session back from the goodbye just sent (seen in CI: the closed tab's
// reconnect arrived after its goodbye, and the session waited out the whole grace period).
let leaving = false;
let instructionsShown = false;
let warned = new Set(); // the time warnings already said
let everLive = false;  // Done and Can't complete only once the person has seen the page
let finishing = null;  // the outcome on its way to the relay, until the relay has it

// For screen readers, at the moments that matter; the visible state says the same.
function announce(text) {
  $("announce").textContent = "";
  setTimeout(() => { $("announce").textContent = text; }, 50); // the same words twice are said twice
}

// Notes shown now, each until its own time: one that comes while another shows joins it (a
// "file sent" must not vanish under the "more time" that the same tap brought).
let noteTimer = null;
const notes = new Map(); // text -> shown until (performance.now())
function note(text, ms = NOTE_MS) {
  notes.delete(text);
  notes.set(text, performance.now() + ms);
  showNotes();
}

function showNotes() {
  clearTimeout(noteTimer);
  const now = performance.now();
  for (const [text, until] of notes) if (until <= now) notes.delete(text);
  $("note").textContent = [...notes.keys()].join("\n");
  $("note").hidden = notes.size === 0;
  if (notes.size) noteTimer = setTimeout(showNotes, Math.min(...notes.values()) - now + 20);
}

function setState(state, message) {
  if (state === "live" && viewer.state !== "live") tellParent("connected");
  if (state === "live") everLive = true;
  const changed = state !== viewer.state;
  viewer.state = state;
  $("state").dataset.state = state;
  document.body.dataset.state = state; // the ended and invalid screens keep only their message
  $("state-text").textContent = t(`state.${state}`);
  const overlay = $("overlay");
  overlay.hidden = state === "live";
  $("spinner").hidden = state === "ended" || state === "invalid";
  if (message) $("message").textContent = message;
  if (changed && state === "live") announce(t("state.live"));
  updateButtons();
}

function updateButtons() {
  const off = !everLive || finishing !== null || viewer.state === "ended" || viewer.state === "invalid";
  $("done").disabled = $("fail").disabled = off;
}

function ended(reason, message) {
  if (viewer.state === "ended") return;
  sessionStorage.removeItem(SAVED);
  viewer.reason = reason;
  finishing = null;
  clearInterval(heartbeat);
  if (viewer.pc) viewer.pc.close();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  const words = message || (MESSAGES.en && MESSAGES.en[`reason.${reason}`] ? t(`reason.${reason}`) : t("ended"));
  setState("ended", words);
  announce(words);
  $("time-left").textContent = "";
  $("keyboard").hidden = true;
  tellParent("complete", { reason });
}

function send(message) {
  const channel = viewer.channel;
  if (!viewer.interactable && message.t !== "sz" && message.t !== "pref") return; // the relay enforces it too
  if (channel && channel.readyState === "open") channel.send(JSON.stringify(message));
}

let sizeTimer = null;
// Resizes come in bursts (a window dragged, a phone turned): the last one of a burst goes. When
// the channel opens there is no burst, and the page should be laid out for this screen before
// the person starts reading: at once.
function sendSize(now = false) {
  clearTimeout(sizeTimer);
  const tell = () => {
    const stage = $("stage");
    send({ t: "sz", w: Math.round(stage.clientWidth), h: Math.round(stage.clientHeight),
      d: Math.round(devicePixelRatio * 100) / 100, tc: touch });
  };
  if (now) tell();
  else sizeTimer = setTimeout(tell, 150);
}

// The page follows the person's colour scheme, language and time zone (unless the session was
// made with viewerPreferences: false); the relay gives the page its own back at the end.
// They go once the video has shown its next frame (or after PREFERENCES_WAIT_MS without one):
// the page's first Intl call starts ICU, which took the main thread 25-120 ms (2 cores,
// measured as the channel opened), and the first frame, due at the same moment, waited for
// it. (A decoded frame, readyState 2, may still be waiting for its paint: not enough.)
function sendPreferences() {
  const channel = viewer.channel;
  let timer = null;
  const go = () => {
    if (timer === null) return; // sent already
    clearTimeout(timer);
    timer = null;
    if (channel === viewer.channel) setTimeout(tellPreferences, 0); // after this frame's paint
  };
  timer = setTimeout(go, PREFERENCES_WAIT_MS);
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(go);
  else go();
}

function tellPreferences() {
  send({
    t: "pref",
    cs: matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light",
    lang: navigator.language || "",
    tz: Intl.DateTimeFormat().resolvedOptions().timeZone || "",
  });
  viewer.preferencesSent++;
}

function setInteractable(on) {
  viewer.interactable = on;
  $("view-only").hidden = on;
  $("keyboard").hidden = !on || !touch;
}

const canAnswer = () => viewer.interactable && !viewer.watcher && viewer.state !== "ended";
const backToPage = () => $("stage").focus({ preventScroll: true });

// showBrowserInterface: the page's address, history, reload and tabs.
function showBrowserInterface(nav) {
  viewer.nav = nav;
  $("browserbar").hidden = false;
  $("nav-back").disabled = !nav.back;
  $("nav-forward").disabled = !nav.forward;
  if (document.activeElement !== $("address")) $("address").value = nav.url;
  const select = $("tabs");
  select.replaceChildren(...nav.tabs.map((tab) => {
    const option = document.createElement("option");
    option.value = tab.id;
    option.textContent = tab.title || tab.url || t("newTab"); // text, never HTML
    option.selected = tab.active;
    return option;
  }));
  select.hidden = nav.tabs.length < 2;
}

// A tap on a text field in the page gives it focus there; the phone's keyboard comes up here
// (our hidden field takes the typing, with the page field's kind of keyboard), and goes
// away when the page's focus leaves the field. The tap's user activation is still fresh when
// the relay's answer arrives, which browsers ask for before they show a keyboard.
const KEYBOARD_MODES = { email: "email", number: "decimal", tel: "tel", url: "url", search: "search" };
function followFocus(field) {
  viewer.field = field;
  const kbd = $("kbd");
  if (!touch || !viewer.interactable || viewer.watcher || viewer.state === "ended") return;
  if (field) {
    kbd.setAttribute("inputmode", field.mode || KEYBOARD_MODES[field.type] || "text");
    if (document.activeElement !== kbd) kbd.focus({ preventScroll: true });
  } else if (document.activeElement === kbd) {
    kbd.blur();
  }
}

// A <select> opened in the page: its list would open where no screencast sees it, so the
// options come here, as a real <select> (a phone shows its own picker), and the choice goes back.
let picking = null;
function showPicker(msg) {
  if (!canAnswer()) return;
  picking = msg.id;
  const kind = msg.kind || "select";
  $("pick-select").hidden = kind !== "select";
  $("pick-value").hidden = kind === "select";
  $("pick-title").textContent = t(kind === "select" ? "chooseOption" : "chooseValue");
  if (kind !== "select") return showValuePicker(msg, kind);
  const groups = new Map();
  const nodes = [];
  msg.options.forEach((o, i) => {
    const option = document.createElement("option");
    option.value = String(i);
    option.textContent = o.label; // text, never HTML
    option.disabled = o.disabled;
    option.selected = i === msg.selected;
    if (!o.group) return nodes.push(option);
    if (!groups.has(o.group)) {
      const group = document.createElement("optgroup");
      group.label = o.group;
      groups.set(o.group, group);
      nodes.push(group);
    }
    groups.get(o.group).append(option);
  });
  const select = $("pick-select");
  select.replaceChildren(...nodes);
  select.size = touch ? 1 : Math.max(2, Math.min(8, msg.options.length)); // a list on desktop
  if (!$("pick-dialog").open) $("pick-dialog").showModal();
  select.focus();
  // On a phone, straight to its own picker while the tap's activation is fresh.
  if (touch && select.showPicker) { try { select.showPicker(); } catch { /* the dialog stays */ } }
}

// A date, time or colour field: the device's own control for that kind of value.
function showValuePicker(msg, kind) {
  const input = $("pick-value");
  input.type = kind;
  for (const name of ["min", "max", "step"]) {
    if (msg[name]) input.setAttribute(name, msg[name]);
    else input.removeAttribute(name);
  }
  input.value = msg.value || "";
  if (!$("pick-dialog").open) $("pick-dialog").showModal();
  input.focus();
  if (touch && input.showPicker) { try { input.showPicker(); } catch { /* the dialog stays */ } }
}

function choose() {
  if (picking !== null && !$("pick-select").hidden && $("pick-select").value !== "") {
    send({ t: "pick", id: picking, i: Number($("pick-select").value) });
  } else if (picking !== null && !$("pick-value").hidden) {
    send({ t: "pick", id: picking, s: $("pick-value").value });
  }
  picking = null;
  if ($("pick-dialog").open) $("pick-dialog").close();
  backToPage();
}

// Copied in the page: onto the person's clipboard where their browser allows it, else shown
// to copy by hand.
async function copyOut(text) {
  try {
    await navigator.clipboard.writeText(text);
    note(t("copied"));
  } catch {
    $("copy-text").value = text;
    if (!$("copy-dialog").open) $("copy-dialog").showModal();
    $("copy-text").select();
  }
}

async function copyAgain() {
  const text = $("copy-text").value;
  let copied = false;
  try {
    await navigator.clipboard.writeText(text); // now with the person's click behind it
    copied = true;
  } catch {
    $("copy-text").select();
    copied = document.execCommand("copy");
  }
  if (copied) {
    $("copy-dialog").close();
    note(t("copied"));
    backToPage();
  }
}

// The page's own alert / confirm / prompt / beforeunload: Chromium draws none in a headless
// page, so the person sees it here. Watchers and view-only viewers see it, cannot answer.
function showPageDialog(msg) {
  const answerable = canAnswer();
  const leaving = msg.type === "beforeunload";
  $("page-dialog-title").textContent = t(leaving ? "leaveTitle" : "pageAsks");
  $("page-dialog-message").textContent = msg.message || (leaving ? t("leaveMessage") : "");
  $("page-dialog-input").hidden = msg.type !== "prompt" || !answerable;
  $("page-dialog-input").value = msg.default || "";
  $("page-dialog-ok").hidden = !answerable;
  $("page-dialog-ok").textContent = t(leaving ? "leave" : "ok");
  $("page-dialog-cancel").hidden = !answerable || msg.type === "alert";
  $("page-dialog-cancel").textContent = t(leaving ? "stay" : "cancel");
  $("page-dialog-wait").hidden = answerable;
  if (!$("page-dialog").open) $("page-dialog").showModal();
  if (answerable) $(msg.type === "prompt" ? "page-dialog-input" : "page-dialog-ok").focus();
}

function answerPageDialog(ok) {
  send({ t: "dialog", ok, s: ok ? $("page-dialog-input").value : "" });
  if ($("page-dialog").open) $("page-dialog").close();
  backToPage();
}

const files = fileChooser({ $, t, lang, send, getChannel: () => viewer.channel, note, canAnswer, backToPage });

function showInstructions(text) {
  $("instructions-text").textContent = text; // text, never HTML
  $("instructions").hidden = false;
  $("show-instructions").hidden = true;
}

// The offer (peer connection, data channel, ICE candidates) is made, posted and answered by
// early.js: the first one while this module was still loading, every later one on request.
function takeOffer() {
  const early = window.liveRelayOffer;
  const first = early.first;
  early.first = null;
  if (first) return first;
  const { config: servers, whep } = resource === null
    ? early.requests(config.iceConfig, token, null)
    : early.requests(config.iceConfig, null, { resource, credential });
  return early.start(servers, whep);
}

function onChannelMessage(event) {
  let msg;
  try { msg = JSON.parse(event.data); } catch { return; }
  if (msg.t === "pong") {
    lastPong = performance.now();
    viewer.pongs++;
    viewer.rttMs = performance.now() - msg.ts;
    const endsAt = Date.now() + msg.endsInMs;
    // The person started working: the session now runs to its hard limit. Say so, or the
    // clock's jump looks like a mistake.
    const moved = viewer.endsAt !== null && endsAt - viewer.endsAt > 60_000;
    if (moved && !viewer.watcher) {
      const words = t("moreTime", { minutes: Math.round(msg.endsInMs / 60_000) });
      note(words, 8000);
      announce(words);
    }
    // Warnings already behind us (at the start, or after the move) are not said.
    if (moved || viewer.endsAt === null) warned = new Set(TIME_WARNINGS_S.filter((s) => s * 1000 >= msg.endsInMs));
    viewer.endsAt = endsAt;
    tick();
    if (msg.view && msg.view[0] > 0) viewer.view = msg.view;
    if (msg.interactable !== viewer.interactable) setInteractable(msg.interactable);
    if (msg.watcher && !viewer.watcher) {
      viewer.watcher = true; // a watch link: this page can look, not finish the session
      $("done").hidden = $("fail").hidden = true;
    }
    if (msg.instructions && !instructionsShown) {
      instructionsShown = true;
      showInstructions(msg.instructions);
    }
  } else if (msg.t === "view") {
    viewer.view = msg.view;
  } else if (msg.t === "nav") {
    showBrowserInterface(msg);
  } else if (msg.t === "pick") {
    showPicker(msg);
  } else if (msg.t === "focus") {
    followFocus(msg.field);
  } else if (msg.t === "dialog") {
    showPageDialog(msg);
  } else if (msg.t === "dialogClosed") {
    if ($("page-dialog").open) $("page-dialog").close();
  } else if (msg.t === "file") {
    files.show(msg);
  } else if (msg.t === "fileDone") {
    files.done(msg);
  } else if (msg.t === "copy") {
    if (canAnswer()) copyOut(msg.text);
  } else if (msg.t === "end") {
    ended(msg.reason);
  } else if (msg.t === "kick") {
    // This viewer is cut off; the live session itself is not over, so no "complete".
    kicked = true;
    sessionStorage.removeItem(SAVED);
    clearInterval(heartbeat);
    if (viewer.pc) viewer.pc.close();
    setState("ended", t("kicked", { reason: msg.reason }));
    tellParent("disconnected", { reason: msg.reason });
  }
}

async function connect() {
  const { pc, channel, inbox, answered } = takeOffer();
  viewer.pc = pc;
  viewer.channel = channel;
  files.reset();
  channel.onmessage = onChannelMessage;
  for (const message of inbox.splice(0)) onChannelMessage(message); // said before we listened
  channel.onopen = () => {
    clearInterval(heartbeat);
    lastPong = performance.now();
    let shown = -1;
    const ping = () => {
      if (pc !== viewer.pc || channel.readyState !== "open") return;
      // Pictures still arriving mean the path is alive, only full: on a slow link a burst of
      // motion can hold pongs back for seconds (SCTP resends them after its timeout), and a
      // reconnect would only add a keyframe to the queue.
      const frames = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : -1;
      if (frames !== shown && shown !== -1) lastPong = Math.max(lastPong, performance.now() - HEARTBEAT_MS);
      shown = frames;
      if (performance.now() - lastPong > PONG_TIMEOUT_MS) return reconnect();
      channel.send(JSON.stringify({ t: "ping", ts: performance.now() }));
    };
    ping();
    heartbeat = setInterval(ping, HEARTBEAT_MS);
    sendSize(true);
    sendPreferences();
  };
  channel.onclose = () => {
    if (pc === viewer.pc && viewer.state !== "ended") reconnect();
  };
  pc.onconnectionstatechange = () => {
    if (pc !== viewer.pc || viewer.state === "ended") return;
    if (pc.connectionState === "connected") {
      setState("live");
    } else if (["failed", "disconnected", "closed"].includes(pc.connectionState)) {
      reconnect();
    }
  };
  // The offer was posted, and its answer applied, by early.js: the first connection may be up
  // already, its channel open.
  if (channel.readyState === "open") channel.onopen();
  if (pc.connectionState === "connected") pc.onconnectionstatechange();

  const first = resource === null;
  const response = await answered;
  if (response.status === 201) {
    if (first) {
      resource = new URL(response.headers.get("Location"), location.href).href;
      credential = response.headers.get("X-Relay-Credential");
      sessionStorage.setItem(SAVED, JSON.stringify({ resource, credential }));
    }
    return;
  }
  pc.close();
  if (response.status === 404 && first) {
    setState("invalid", t("invalid"));
  } else if (response.status === 410 || response.status === 404) {
    const body = await response.json().catch(() => ({}));
    ended(body.reason || "closed");
  } else {
    throw new Error(`${response.status} ${await response.text()}`);
  }
}

async function reconnect() {
  if (reconnecting || kicked || leaving || viewer.state === "ended" || resource === null) return;
  reconnecting = true;
  setState("reconnecting", t("reconnecting"));
  announce(t("reconnecting"));
  clearInterval(heartbeat);
  try {
    for (let attempt = 0; viewer.state !== "ended"; attempt++) {
      if (viewer.pc) viewer.pc.close();
      try {
        await connect();
        viewer.reconnects++;
        return;
      } catch (err) {
        console.warn("reconnect failed:", err);
      }
      const delay = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)];
      await new Promise((r) => setTimeout(r, delay));
    }
  } finally {
    reconnecting = false;
  }
}

// Done or "Can't complete": said over HTTP, which answers, and tried again until the relay has
// it (the data channel too, when it is open); the page says "Done" only once the relay does.
async function finish(outcome, reason = "") {
  if (finishing !== null || resource === null || viewer.state === "ended" || viewer.state === "invalid") return;
  finishing = outcome;
  updateButtons();
  const button = $(outcome === "failed" ? "fail" : "done");
  const label = button.textContent;
  button.textContent = t("sending");
  const headers = { Authorization: `Bearer ${credential}` };
  let body;
  if (outcome === "failed" && reason) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify({ reason });
  }
  try {
    for (let attempt = 0; viewer.state !== "ended"; attempt++) {
      try {
        const response = await fetch(`${resource}/${outcome}`, { method: "POST", headers, body });
        const answer = await response.json().catch(() => ({}));
        if (response.ok || response.status === 410) return ended(answer.reason || outcome);
        if (response.status === 404) {
          return ended("closed", t("undelivered"));
        }
      } catch { /* no answer: try again */ }
      if (viewer.channel && viewer.channel.readyState === "open") {
        viewer.channel.send(JSON.stringify(outcome === "failed" ? { t: "fail", r: reason } : { t: "done" }));
      }
      const delay = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)];
      await new Promise((r) => setTimeout(r, delay));
    }
  } finally {
    button.textContent = label;
  }
}

// The tab is closing or reloading (it cannot tell which): the relay waits a moment for a
// reload to come back, then ends the session as closed.
function goodbye() {
  leaving = true;
  if (resource === null || viewer.state === "ended" || viewer.state === "invalid") return;
  // sendBeacon survives the page going away; it cannot carry headers, so the credential is
  // the body.
  const body = new Blob([credential], { type: "text/plain" });
  if (!navigator.sendBeacon(`${resource}/close`, body)) {
    fetch(`${resource}/close`, { method: "POST", keepalive: true, body });
  }
}

function tick() {
  if (viewer.endsAt === null || viewer.state === "ended") return;
  const s = Math.max(0, Math.round((viewer.endsAt - Date.now()) / 1000));
  const time = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  $("time-left").textContent = t("timeLeft", { time });
  $("time-left").classList.toggle("low", s <= 60);
  for (const limit of TIME_WARNINGS_S) {
    if (s <= limit && s > 0 && !warned.has(limit) && viewer.state === "live") {
      warned.add(limit);
      announce(limit === 60 ? t("timeLeftOne") : t("timeLeftSoon", { minutes: Math.round(s / 60) }));
    }
  }
}

$("done").addEventListener("click", () => finish("done"));
$("fail").addEventListener("click", () => {
  $("fail-reason").value = "";
  $("fail-dialog").showModal();
});
$("fail-back").addEventListener("click", () => $("fail-dialog").close());
$("pick-select").addEventListener("change", choose);
$("pick-form").addEventListener("submit", (e) => { e.preventDefault(); choose(); });
$("pick-cancel").addEventListener("click", () => { picking = null; $("pick-dialog").close(); });
$("page-dialog-form").addEventListener("submit", (e) => { e.preventDefault(); answerPageDialog(true); });
$("page-dialog-cancel").addEventListener("click", () => answerPageDialog(false));
$("page-dialog").addEventListener("cancel", (e) => {
  // Escape answers as Cancel would (OK for an alert); a watcher just closes its copy.
  if (viewer.interactable && !viewer.watcher) { e.preventDefault(); answerPageDialog(false); }
});
$("fail-form").addEventListener("submit", () => finish("failed", $("fail-reason").value.trim()));
$("keyboard").addEventListener("click", () => $("kbd").focus());
$("instructions-close").addEventListener("click", () => {
  $("instructions").hidden = true;
  $("show-instructions").hidden = false; // it can be read again
});
$("show-instructions").addEventListener("click", () => showInstructions($("instructions-text").textContent));
$("copy-again").addEventListener("click", () => { copyAgain(); });
$("copy-dialog").addEventListener("close", backToPage);
// The video area changes with the window, a rotation, or the browser bar appearing.
new ResizeObserver(() => sendSize()).observe($("stage"));
$("nav-back").addEventListener("click", () => send({ t: "nav", a: "back" }));
$("nav-forward").addEventListener("click", () => send({ t: "nav", a: "forward" }));
$("nav-reload").addEventListener("click", () => send({ t: "nav", a: "reload" }));
$("address-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const url = $("address").value.trim();
  if (url) send({ t: "nav", a: "go", u: url });
  $("address").blur();
  $("stage").focus({ preventScroll: true });
});
$("tabs").addEventListener("change", (e) => send({ t: "tab", id: e.target.value }));
attachInput({
  stage: $("stage"), video, keyboardField: $("kbd"), send, getView: () => viewer.view,
  onInteract: () => tellParent("interacted"),
  // Shift+Escape: out of the page to the toolbar (Tab goes on from there).
  onLeave: () => {
    const buttons = [$("done"), ...$("toolbar").querySelectorAll("button")];
    (buttons.find((b) => !b.disabled && b.offsetParent !== null) || $("toolbar")).focus();
  },
});
setInteractable(true);
window.addEventListener("pagehide", goodbye);
// Back from the back/forward cache (Chromium keeps no page with a live peer connection there,
// others may): the tab is here again, and so is its session if the reload window allows.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  leaving = false;
  reconnect();
});
window.addEventListener("online", () => { if (viewer.state === "reconnecting") reconnect(); });
setInterval(tick, 1000);

function savedViewer() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SAVED) || "null");
    return saved && typeof saved.resource === "string" && typeof saved.credential === "string" ? saved : null;
  } catch {
    return null;
  }
}

function start() {
  connect().catch((err) => {
    console.error(err);
    if (viewer.pc) viewer.pc.close();
    if (viewer.state === "connecting") setState("connecting", t("retrying"));
    if (resource !== null) reconnect();
    else setTimeout(() => connect().catch(() => setState("invalid", t("cannotConnect"))), 1000);
  });
}

const saved = savedViewer();
if (/^[A-Za-z0-9_-]{43}$/.test(token)) {
  sessionStorage.removeItem(SAVED); // a link opened in this tab: that one counts now
  start();
} else if (saved) {
  // This tab was reloaded: take the session up again with the credential it was given.
  resource = saved.resource;
  credential = saved.credential;
  start();
} else {
  const early = window.liveRelayOffer;
  if (early && early.first) early.first.pc.close(); // nothing to connect to
  setState("invalid", t("invalid"));
}
