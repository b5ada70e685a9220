// The first script of the viewer page, a classic one that runs while the page is still being
// parsed: it starts the WebRTC offer (the peer connection, its data channel and the gathering
// of ICE candidates) before the modules that drive the page have loaded. Creating the first
// peer connection of a page costs Chromium tens of milliseconds, and gathering another few
// tens: done here, both overlap with loading viewer.js. viewer.js takes this first offer and
// calls the same function for every reconnection.
(() => {
  // The relay takes no trickled candidates. With no STUN or TURN server the offer need not
  // wait for any: the viewer's checks reach the relay's own candidates (in the answer), and
  // the relay learns the viewer's address from them. Host candidates are mostly mDNS names
  // anyway (every browser's default), which the relay cannot use at once. With STUN or TURN,
  // the reflexive and relayed candidates matter: the offer waits for gathering to complete.
  const ICE_GATHER_MAX_MS = 2000;

  function gathered(pc) {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); resolve(); };
      const timer = setTimeout(done, ICE_GATHER_MAX_MS);
      pc.addEventListener("icecandidate", (event) => { if (!event.candidate) done(); });
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") done();
      });
    });
  }

  // The STUN/TURN servers, when the relay has any, come with the link (TURN credentials are
  // minted for each viewer, and never sit in the page): GET {token}/config for a link,
  // {resource}/config with the viewer's credential for a reconnection. Without any, nothing
  // is fetched and the offer starts at once.
  function iceServersFrom(request) {
    if (!request) return Promise.resolve([]);
    return fetch(request.url, { headers: request.headers || {} })
      .then((response) => (response.ok ? response.json() : {}))
      .then((body) => body.iceServers || [], () => []);
  }

  function startOffer(configRequest) {
    performance.mark("relay-connect"); // benchmarks time the first frame from here
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.addTransceiver("video", { direction: "recvonly" });
    const channel = pc.createDataChannel("relay", { ordered: true });
    channel.binaryType = "arraybuffer";
    // What the STUN/TURN servers answered while gathering (a 401: TURN refused the
    // credentials): the relay cannot see it otherwise, so the offer tells it.
    const iceErrors = [];
    pc.addEventListener("icecandidateerror", (event) => {
      if (event.url && iceErrors.length < 8) iceErrors.push(`${event.errorCode} ${event.url}`);
    });
    const ready = iceServersFrom(configRequest).then((iceServers) => {
      if (iceServers.length) pc.setConfiguration({ iceServers });
      // Listening before gathering starts.
      const candidates = iceServers.length ? gathered(pc) : Promise.resolve();
      return pc.createOffer().then((offer) => pc.setLocalDescription(offer)).then(() => candidates);
    });
    return { pc, channel, ready, iceErrors };
  }

  // The first offer's config: the link's token in the address, or a reloaded tab's session.
  function firstConfigRequest(config) {
    if (!config.iceConfig) return null;
    const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
    if (/^[A-Za-z0-9_-]{43}$/.test(token)) return { url: `${encodeURIComponent(token)}/config` };
    try {
      const saved = JSON.parse(sessionStorage.getItem("live-relay:viewer") || "null");
      if (saved && saved.resource && saved.credential) {
        return { url: `${saved.resource}/config`, headers: { Authorization: `Bearer ${saved.credential}` } };
      }
    } catch { /* no saved session */ }
    return null;
  }

  let config = {};
  try {
    config = JSON.parse(document.getElementById("relay-config").textContent || "{}");
  } catch { /* viewer.js says what is wrong with the page */ }
  window.liveRelayOffer = { start: startOffer, first: null };
  try {
    window.liveRelayOffer.first = startOffer(firstConfigRequest(config));
  } catch { /* no WebRTC here: viewer.js tries again and reports it */ }
})();
