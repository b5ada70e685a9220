"""``live-relay serve`` runs the service; ``live-relay demo`` shows it end to end."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import signal
import sys
from pathlib import Path

from relay.browser.cdp import CDPConnection
from relay.browser.chromium import launch_chromium
from relay.config import Settings, add_arguments, load_settings
from relay.errors import CDPClosed, CDPError, ChromiumNotFound, ConfigError
from relay.http.app import MANAGER, STORE, RunningServer, start_server
from relay.logs import setup_logging
from relay.sessions.options import LiveOptions
from relay.sessions.trim import freeze_startup

DEMO_DIR = Path(__file__).resolve().parent / "demo"
log = logging.getLogger("relay")


def _stop_signal() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, listening from now on (so a signal that comes right
    after the relay says it listens is not lost)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _wait_for_signal() -> None:
    await _stop_signal().wait()


async def serve(settings: Settings) -> None:
    stop = _stop_signal()
    server = await start_server(settings)
    # Modules, settings, the app: out of the collector's sight for the process's life (not in
    # start_server: a test process starts many relays and must collect their remains).
    freeze_startup()
    log.info(
        "live-relay listening on %s (store: %s)",
        server.base_url,
        "redis" if settings.redis_url else "in-process",
    )
    if not settings.api_keys:
        log.warning("no API keys set: the API is open to anyone on this machine")
    try:
        await stop.wait()
    finally:
        log.info(
            "shutting down: open live sessions go to another relay of the cluster, or end "
            "with reason 'cancelled'"
            if settings.redis_url
            else "shutting down: open live sessions end with reason 'cancelled'"
        )
        await server.close()


async def _demo_page_state(endpoint: str) -> str:
    try:
        conn = await CDPConnection.connect(endpoint)
    except CDPClosed:
        return "the demo browser is gone"
    try:
        targets = (await conn.send("Target.getTargets"))["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = await conn.attach(page["targetId"])
        result = await session.send(
            "Runtime.evaluate",
            {"expression": "JSON.stringify(window.demo || null)", "returnByValue": True},
        )
        return f"page says {result['result'].get('value')} at {page['url']}"
    except (CDPError, CDPClosed, TimeoutError, StopIteration, KeyError) as exc:
        return f"could not read the page ({exc})"
    finally:
        await conn.close()


# What the person with the demo's link is asked to do: shown in the viewer, not only here.
DEMO_TASK = (
    "Sign in with any user name and the password hunter2, enter the code 123456, then press Done."
)


async def demo(settings: Settings, timeout_ms: int) -> int:
    server: RunningServer = await start_server(settings, {"/demo/": DEMO_DIR})
    chromium = None
    try:
        try:
            chromium = await launch_chromium(
                settings.chromium, start_url=f"{server.base_url}/demo/signin.html"
            )
        except ChromiumNotFound as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        manager, store = server.app[MANAGER], server.app[STORE]
        session, token = await manager.create(
            LiveOptions(
                browser_ws_endpoint=chromium.ws_endpoint, target_id=None, timeout_ms=timeout_ms,
                instructions=DEMO_TASK,
            )
        )  # fmt: skip
        print("\nA Chromium page is waiting for a person. Open this one-time link in a browser:\n")
        print(f"    {server.base_url}/live/{token}\n", flush=True)
        print(
            f"(valid {settings.link_ttl_s:g} s until opened; the session lasts "
            f"{timeout_ms / 1000:g} s)\nThe person reads: {DEMO_TASK}\n",
            flush=True,
        )

        async def follow() -> None:
            async with store.events(session.id) as events:
                async for event in events:
                    print(f"event: {event.to_json()}", flush=True)
                    if event.final:
                        return

        follower = asyncio.create_task(follow())
        stop = asyncio.create_task(_wait_for_signal())
        await asyncio.wait([follower, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not follower.done():
            await session.end("cancelled")
            await follower
        page = await _demo_page_state(chromium.ws_endpoint)
        print(f"\nliveComplete: reason={session.reason}; {page}")
        return 0
    finally:
        if chromium is not None:
            await chromium.close()
        await server.close()


def _version() -> str:
    try:
        return importlib.metadata.version("live-relay")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="live-relay", description=__doc__)
    parser.add_argument("--version", action="version", version=f"live-relay {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="run the relay service")
    add_arguments(serve_p)
    demo_p = sub.add_parser(
        "demo", help="launch Chromium on a demo sign-in page and print a live link"
    )
    add_arguments(demo_p)
    demo_p.add_argument(
        "--session-timeout-ms",
        type=int,
        default=600_000,
        help="how long the demo's live session lasts",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args=vars(args))
        settings.check_bind()
    except ConfigError as exc:
        print(f"live-relay: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "serve":
            asyncio.run(serve(settings))
            return 0
        return asyncio.run(demo(settings, args.session_timeout_ms))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"live-relay: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
