"""Several relays on one Redis: each holds some live sessions (``relay.store.cluster`` records
which), renews its lease, takes over the sessions of a relay whose lease ran out, and hands
its own over when it stops. ``relay.http.routing`` sends each request to the session's owner."""

from relay.cluster.node import CLUSTER_HEADER, ClusterNode, Forward, Here

__all__ = ["CLUSTER_HEADER", "ClusterNode", "Forward", "Here"]
