"""WebRTC: the WHEP peer a viewer connects to, SDP checks, zero playout delay, and the few
adaptations of aiortc's internals the relay needs (``aiortc_compat``, all in one place)."""
