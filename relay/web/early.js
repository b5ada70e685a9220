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

  function startOffer(iceServers) {
    performance.mark("relay-connect"); // benchmarks time the first frame from here
    const pc = new RTCPeerConnection({ iceServers });
    pc.addTransceiver("video", { direction: "recvonly" });
    const channel = pc.createDataChannel("relay", { ordered: true });
    channel.binaryType = "arraybuffer";
    // Listening before gathering starts.
    const candidates = iceServers.length ? gathered(pc) : Promise.resolve();
    const ready = pc.createOffer().then((offer) => pc.setLocalDescription(offer)).then(() => candidates);
    return { pc, channel, ready };
  }

  let iceServers = [];
  try {
    iceServers = JSON.parse(document.getElementById("relay-config").textContent || "{}").iceServers || [];
  } catch { /* viewer.js says what is wrong with the page */ }
  window.liveRelayOffer = { start: startOffer, first: null };
  try {
    window.liveRelayOffer.first = startOffer(iceServers);
  } catch { /* no WebRTC here: viewer.js tries again and reports it */ }
})();
