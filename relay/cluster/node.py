"""This relay as one node of a cluster.

Every ``lease_s / 3`` the node renews its lease (``node:{id}`` in Redis), then:

- lets go of local sessions the directory says another relay now holds (it took them over
  while this node could not renew: only one relay ever streams a session);
- takes up sessions the directory says this node holds but it does not run (handed to it by a
  relay that stopped);
- sweeps: the sessions of every node whose lease ran out are claimed (compare and set: one
  relay wins each) and taken over (``relay.sessions.takeover``), or ended with a reason.

A request about a session this node does not run asks ``where``: here (taking the session over
first when its owner is dead or handed it here), or forwarded to the owner's internal URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from relay import tokens
from relay.errors import OwnerUnavailable, StoreUnavailable
from relay.sessions.manager import LiveManager
from relay.sessions.session import LiveSession
from relay.sessions.takeover import adopt
from relay.store.cluster import Directory, NodeInfo

__all__ = ["CLUSTER_HEADER", "ClusterNode", "Forward", "Here"]
log = logging.getLogger(__name__)
CLUSTER_HEADER = "X-Relay-Cluster"  # the cluster secret: a forwarded request, a hand-over
HAND_OVER_S = 5.0  # at most, for telling the successors on SIGTERM


@dataclass(frozen=True)
class Here:
    """Answer the request here."""


@dataclass(frozen=True)
class Forward:
    """Send the request on to the relay that holds the session."""

    url: str


class ClusterNode:
    def __init__(
        self,
        manager: LiveManager,
        directory: Directory,
        internal_url: str,
        secret: tokens.Secret | None,
        lease_s: float,
        http: aiohttp.ClientSession,
    ) -> None:
        self.manager, self.directory, self.http = manager, directory, http
        self.info = NodeInfo(manager.node_id, internal_url or None)
        self.secret, self.lease_s = secret, lease_s
        self._adopting: dict[str, asyncio.Task[LiveSession | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._outage = False

    @property
    def id(self) -> str:
        return self.info.id

    def background(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Work for this node that nobody waits for; cancelled when the node closes."""
        self._spawn(coro, name)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the lease ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.directory.heartbeat(self.info, self.lease_s)
        self._loop = asyncio.create_task(self._run(), name="cluster-node")
        log.info("cluster node %s (%s), lease %gs", self.id, self.info.url or "not reachable by "
                 "other relays: RELAY_INTERNAL_URL unset", self.lease_s)  # fmt: skip

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self.directory.heartbeat(self.info, self.lease_s)
                await self._reconcile()
                await self._sweep()
                if self._outage:
                    self._outage = False
                    log.info("cluster node %s: lease renewed again", self.id)
            except StoreUnavailable:
                if not self._outage:  # the store logs the outage; this says what it means
                    self._outage = True
                    log.warning(
                        "cluster node %s: cannot renew the lease while Redis is down; other "
                        "relays cannot take over meanwhile either", self.id,
                    )  # fmt: skip
            except Exception:
                log.exception("cluster node %s: lease round failed", self.id)

    def _here(self) -> set[str]:
        """Sessions this node runs, makes or is ending."""
        return set(self.manager.sessions) | self.manager.creating | self.manager.ending

    async def _reconcile(self) -> None:
        running = set(self.manager.sessions)  # before the read: all of these were owned then
        owned = await self.directory.owned(self.id)
        for live_id in running - owned:
            session = self.manager.sessions.get(live_id)
            if session is not None and not session.ended:
                log.warning("live %s: another relay took the session over; letting go", live_id)
                self._spawn(session.hand_over(save=False), "cluster-let-go")
        if not self.info.draining:
            for live_id in owned - self._here():  # handed to this node by a relay that stopped
                self._spawn(self.adopt(live_id), "cluster-adopt")

    async def _sweep(self) -> None:
        for node_id, info in (await self.directory.nodes()).items():
            if info is not None or node_id == self.id:
                continue
            for live_id in await self.directory.owned(node_id):
                if await self.directory.claim(live_id, node_id, self.id):
                    log.info("live %s: its relay %s is gone; taking the session over",
                             live_id, node_id)  # fmt: skip
                    self._spawn(self.adopt(live_id), "cluster-adopt")
            await self.directory.forget_node(node_id)

    # -- taking sessions over ----------------------------------------------------------------

    async def adopt(self, live_id: str) -> LiveSession | None:
        """Run a session this node now owns; concurrent callers share one takeover."""
        session = self.manager.sessions.get(live_id)
        if session is not None:
            return session
        task = self._adopting.get(live_id)
        if task is None:
            task = asyncio.create_task(adopt(self.manager, live_id), name=f"adopt:{live_id}")
            self._adopting[live_id] = task
            task.add_done_callback(lambda _: self._adopting.pop(live_id, None))
        return await asyncio.shield(task)

    async def where(self, live_id: str, forwarded: bool) -> Here | Forward:
        """Where a request about this session is answered. ``OwnerUnavailable`` when nobody
        can answer it now (the caller tries again in a moment)."""
        if live_id in self._here():
            return Here()
        owner = await self.directory.owner(live_id)
        if owner is None:
            return Here()  # ended (its outcome is kept) or unknown: answered from the store
        if owner != self.id:
            info = await self.directory.node(owner)
            if info is not None:
                if forwarded or info.url is None:
                    raise OwnerUnavailable("the relay holding this session cannot be reached")
                return Forward(info.url)
            if self.info.draining or not await self.directory.claim(live_id, owner, self.id):
                raise OwnerUnavailable("the session is moving to another relay")
            log.info("live %s: its relay %s is gone; taking the session over", live_id, owner)
        elif self.info.draining:
            raise OwnerUnavailable("this relay is stopping")
        await self.adopt(live_id)
        return Here()

    # -- stopping ----------------------------------------------------------------------------

    async def hand_over_all(self) -> None:
        """SIGTERM: no new sessions here; each running one goes to another live relay (its
        viewers reconnect there). Sessions no relay can take stay for the caller to end."""
        self.info = replace(self.info, draining=True)
        with contextlib.suppress(StoreUnavailable):
            await self.directory.heartbeat(self.info, self.lease_s)
        try:
            nodes = await self.directory.nodes()
        except StoreUnavailable:
            return
        others = [n for n in nodes.values() if n and n.id != self.id and n.url and not n.draining]
        if not others:
            return
        random.shuffle(others)
        # The browsers this relay launched stop with it: their sessions end here.
        sessions = [s for s in self.manager.sessions.values() if s.movable and not s.ended]
        async with asyncio.timeout(HAND_OVER_S):
            await asyncio.gather(
                *(self._hand_over(s, others[i % len(others)]) for i, s in enumerate(sessions)),
                return_exceptions=True,
            )

    async def _hand_over(self, session: LiveSession, successor: NodeInfo) -> None:
        await session.hand_over()
        if not await self.directory.claim(session.id, self.id, successor.id, force=True):
            return  # another relay has it already
        log.info("live %s: handed over to relay %s", session.id, successor.id)
        headers = {CLUSTER_HEADER: self.secret.value if self.secret else ""}
        url = f"{successor.url}/cluster/adopt/{session.id}"
        try:
            async with self.http.post(url, headers=headers, timeout=aiohttp.ClientTimeout(3)):
                pass
        except (aiohttp.ClientError, TimeoutError) as exc:  # it finds it in its next round
            log.info("live %s: relay %s did not answer the hand-over: %s",
                     session.id, successor.id, type(exc).__name__)  # fmt: skip

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for task in list(self._tasks) + list(self._adopting.values()):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._adopting.values(), return_exceptions=True)
        owned: set[str] = set()
        with contextlib.suppress(StoreUnavailable):
            owned = await self.directory.owned(self.id)
        if not owned:  # else it stays on the list and the others' sweepers end what is left
            with contextlib.suppress(StoreUnavailable):
                await self.directory.leave(self.id)
