"""The page a live session shows: found in the browser (the first page, or the one named),
attached to, and brought to the front."""

from __future__ import annotations

import contextlib

from relay.browser.cdp import CDPConnection, CDPSession
from relay.errors import BrowserUnreachable, CDPClosed, CDPError, TargetNotFound, TargetUnusable

__all__ = ["attach_target"]


async def attach_target(conn: CDPConnection, target_id: str | None) -> CDPSession:
    try:
        if target_id is None:
            infos = (await conn.send("Target.getTargets")).get("targetInfos", [])
            pages = [
                t["targetId"] for t in (infos if isinstance(infos, list) else [])
                if isinstance(t, dict) and t.get("type") == "page"
                and isinstance(t.get("targetId"), str)
            ]  # fmt: skip
            if not pages:
                raise TargetUnusable("the browser has no page to show; pass targetId")
            target_id = pages[0]
        else:
            info = await conn.send("Target.getTargetInfo", {"targetId": target_id})
            target_info = info.get("targetInfo")
            kind = target_info.get("type") if isinstance(target_info, dict) else None
            if kind != "page":
                raise TargetUnusable(f"target {target_id} is a {kind}, not a page")
        target = await conn.attach(target_id)
        with contextlib.suppress(CDPError):
            await target.send("Inspector.enable")  # for Inspector.targetCrashed
        with contextlib.suppress(CDPError):
            # A background tab is hidden: Chromium paints it rarely or never, and its
            # page knows it is not seen. The person is about to look at it.
            await target.send("Page.bringToFront")
        return target
    except CDPError as exc:
        raise TargetNotFound(f"no such target in that browser: {exc.message}") from None
    except (CDPClosed, TimeoutError) as exc:
        raise BrowserUnreachable(f"the browser stopped answering: {exc}") from None
