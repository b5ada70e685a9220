// The operator console: sign in with an operator key, watch the open requests (server-sent
// events, every relay's), take one: the relay gives this operator a fresh one-time link of
// their own, and the viewer opens in this tab. Text from scripts (instructions, page titles)
// only ever goes in as textContent.

const $ = (id) => document.getElementById(id);
let csrf = null;
let clockOffsetMs = 0; // the relay's clock minus ours: ages and times left are the relay's
let listed = [];
let events = null;

const STATUS = { pending: "Waiting", live: "In progress", reconnecting: "Reconnecting" };

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.method === "POST") {
    headers["Content-Type"] = "application/json";
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  const body = await response.json().catch(() => ({}));
  return { status: response.status, body };
}

function show(section) {
  $("signin").hidden = section !== "signin";
  $("queue").hidden = section !== "queue";
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The list is built when it changes; the clock only rewrites the times in place (rebuilding
// it every second would take a button away from under a finger that is pressing it).
function render() {
  const list = $("requests");
  list.replaceChildren(
    ...listed.map((r) => {
      const item = el("li");
      item.dataset.id = r.id;
      item.append(el("h2", "", r.title || "Untitled page"));
      const take = el("button", "take", r.takenBy ? `Taken by ${r.takenBy}` : "Take");
      take.type = "button";
      take.disabled = r.status !== "pending" || (r.takenBy !== null && r.takenBy !== $("name").textContent);
      if (r.takenBy === $("name").textContent && r.status === "pending") take.textContent = "Take again";
      take.addEventListener("click", () => takeRequest(r.id, take));
      if (r.instructions) item.append(el("p", "instructions", r.instructions));
      const meta = el("p", "meta");
      meta.append(el("span", `badge ${r.status}`, STATUS[r.status] || r.status));
      const asked = el("span", "asked");
      const left = el("span", "left");
      asked.dataset.since = r.createdAt;
      left.dataset.until = r.endsAt;
      meta.append(asked, left);
      if (r.takenBy) meta.append(el("span", "taken", `taken by ${r.takenBy}`));
      item.append(meta);
      item.append(take); // after what it is about: read first, then take
      return item;
    }),
  );
  $("count").textContent = listed.length ? `(${listed.length})` : "";
  $("empty").hidden = listed.length > 0;
  tick();
}

function tick() {
  const now = Date.now() + clockOffsetMs;
  for (const span of document.querySelectorAll("#requests .asked")) {
    span.textContent = `asked ${duration(now - Date.parse(span.dataset.since))} ago`;
  }
  for (const span of document.querySelectorAll("#requests .left")) {
    span.textContent = `${duration(Date.parse(span.dataset.until) - now)} left`;
  }
}

async function takeRequest(id, button) {
  button.disabled = true;
  button.textContent = "Taking…";
  const { status, body } = await api(`/console/api/requests/${encodeURIComponent(id)}/take`, { method: "POST" });
  if (status === 200 && body.liveURL) {
    location.assign(body.liveURL);
    return;
  }
  $("status").textContent = status === 409 ? `Not yours: ${body.error}.` : `Could not take it: ${body.error || status}.`;
  button.textContent = body.takenBy ? `Taken by ${body.takenBy}` : "Take";
}

function listen() {
  if (events) events.close();
  events = new EventSource("/console/api/events");
  events.addEventListener("requests", (event) => {
    const data = JSON.parse(event.data);
    clockOffsetMs = data.now * 1000 - Date.now();
    $("status").textContent = "";
    if (JSON.stringify(data.requests) === JSON.stringify(listed)) return; // nothing to redo
    listed = data.requests;
    render();
  });
  events.onerror = () => { $("status").textContent = "Reconnecting…"; };
}

async function start() {
  const { status, body } = await api("/console/api/me");
  if (status !== 200) {
    show("signin");
    $("key").focus();
    return;
  }
  csrf = body.csrf;
  $("name").textContent = body.name;
  show("queue");
  listen();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  const { status, body } = await api("/console/api/signin", {
    method: "POST",
    body: JSON.stringify({ key: $("key").value }),
  });
  $("key").value = "";
  if (status !== 200) {
    $("signin-error").textContent = body.error || "Could not sign in.";
    return;
  }
  start();
});

$("signout").addEventListener("click", async () => {
  await api("/console/api/signout", { method: "POST" });
  if (events) events.close();
  csrf = null;
  show("signin");
});

setInterval(tick, 1000);
start();
