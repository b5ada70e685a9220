// The first script of the viewer page, inlined at the top of its <head> (the relay allows it by
// its hash): it makes the first connection while the rest of the page loads. It creates the
// peer connection and its data channel, makes the offer, sends it (WHEP POST) and applies the
// answer, so ICE, DTLS and the first keyframe overlap with loading the stylesheet and the
// modules; the video plays as soon as its track arrives, and until then the page's picture is
// shown. viewer.js takes this first connection over (its response, the messages its channel
// received meanwhile) and calls the same start() for every reconnection.
(() => {
  // The relay takes no trickled candidates. With no STUN or TURN server the offer need not
  // wait for any: the viewer's checks reach the relay's own candidates (in the answer), and
  // the relay learns the viewer's address from them. Host candidates are mostly mDNS names
  // anyway (every browser's default), which the relay cannot use at once. With STUN or TURN,
  // the reflexive and relayed candidates matter: the offer waits for gathering to complete.
  const ICE_GATHER_MAX_MS = 2000;
  const SAVED = "live-relay:viewer";

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

  // then(video) now if the page's <video> is parsed, else once the body is.
  function whenVideo(then) {
    const video = document.getElementById("video");
    if (video) then(video);
    else {
      document.addEventListener("DOMContentLoaded", () => {
        const parsed = document.getElementById("video");
        if (parsed) then(parsed);
      }, { once: true });
    }
  }

  // A live screen, not a film: each frame is shown as soon as it is decoded, no smoothing.
  // The track goes to the page's <video> when it arrives (the body is parsed by then; if not
  // yet, once it is), so the first frame does not wait for viewer.js.
  function show(event) {
    const receiver = event.receiver;
    if ("jitterBufferTarget" in receiver) receiver.jitterBufferTarget = 0;
    else if ("playoutDelayHint" in receiver) receiver.playoutDelayHint = 0;
    whenVideo((video) => {
      video.srcObject = new MediaStream([event.track]);
      video.play().catch(() => {});
    });
  }

  // The offer as WHEP says: POST it, and a 201 carries the answer, applied here. What the
  // caller needs of the response (Location, the credential; the body of a refusal) stays
  // readable: a 201's body is the only one read.
  function post(offer, whep) {
    return offer.ready.then(() => {
      const headers = { "Content-Type": "application/sdp", ...(whep.headers || {}) };
      if (offer.iceErrors.length) headers["X-Relay-Ice-Errors"] = offer.iceErrors.join(", ");
      return fetch(whep.url, { method: "POST", headers, body: offer.pc.localDescription.sdp });
    }).then((response) => {
      if (response.status !== 201) return response;
      return response.text()
        .then((sdp) => offer.pc.setRemoteDescription({ type: "answer", sdp }))
        .then(() => response);
    });
  }

  // The page's picture (relay/http/picture.py) is the video's poster until the video has a
  // frame: one request, where the video waits for the offer, the answer, ICE, DTLS and a
  // keyframe, so the person starts reading at once. A link's page has it in its HTML, asked
  // for as the page is parsed; a reloaded tab (its address no longer holds the link) asks
  // here, with its credential.
  function askPicture(request) {
    fetch(request.url, { headers: request.headers, cache: "no-store" })
      .then((response) => (response.status === 200 ? response.blob() : null))
      .then((blob) => {
        if (!blob) return;
        whenVideo((video) => {
          // HAVE_CURRENT_DATA: the video shows a frame already, newer than the picture.
          if (video.readyState < 2) video.poster = URL.createObjectURL(blob);
        });
      })
      .catch(() => {});
  }

  // Gone with the first frame: a reconnection's new track would show it again, stale.
  whenVideo((video) => {
    video.addEventListener("loadeddata", () => {
      if (video.poster.startsWith("blob:")) URL.revokeObjectURL(video.poster);
      video.removeAttribute("poster");
    }, { once: true });
  });

  // configRequest: where the STUN/TURN servers come from (null: none). whep: where to post
  // the offer ({url, headers}).
  function startOffer(configRequest, whep) {
    performance.mark("relay-connect"); // benchmarks time the first frame from here
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addEventListener("track", show);
    const channel = pc.createDataChannel("relay", { ordered: true });
    channel.binaryType = "arraybuffer";
    // What the channel says before viewer.js listens: kept for it, in order.
    const inbox = [];
    channel.onmessage = (event) => inbox.push(event);
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
    const offer = { pc, channel, ready, iceErrors, inbox, answered: null };
    offer.answered = post(offer, whep);
    offer.answered.catch(() => {}); // viewer.js reports it when it takes the offer
    return offer;
  }

  // Where a connection's STUN/TURN servers come from and where its offer goes: a link's
  // token (the first connection of a link), or the viewer's session once it has one.
  function requests(iceConfig, link, session) {
    if (link !== null) {
      const at = encodeURIComponent(link);
      return { config: iceConfig ? { url: `${at}/config` } : null, whep: { url: `${at}/whep` } };
    }
    const headers = { Authorization: `Bearer ${session.credential}` };
    return {
      config: iceConfig ? { url: `${session.resource}/config`, headers } : null,
      whep: { url: `${session.resource}/whep`, headers },
      picture: { url: `${session.resource}/picture`, headers },
    };
  }

  // The first connection: a link's token in the address, or a reloaded tab's session (the
  // same choice viewer.js makes); null when the page is neither (viewer.js says so).
  function firstRequests(config) {
    const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
    if (/^[A-Za-z0-9_-]{43}$/.test(token)) return requests(config.iceConfig, token, null);
    try {
      const saved = JSON.parse(sessionStorage.getItem(SAVED) || "null");
      if (saved && saved.resource && saved.credential) return requests(config.iceConfig, null, saved);
    } catch { /* no saved session */ }
    return null;
  }

  let config = {};
  try {
    config = JSON.parse(document.getElementById("relay-config").textContent || "{}");
  } catch { /* viewer.js says what is wrong with the page */ }
  window.liveRelayOffer = { start: startOffer, requests, first: null };
  try {
    const first = firstRequests(config);
    if (first && first.picture) askPicture(first.picture); // before the offer is made
    if (first) window.liveRelayOffer.first = startOffer(first.config, first.whep);
  } catch { /* no WebRTC here: viewer.js tries again and reports it */ }
})();
