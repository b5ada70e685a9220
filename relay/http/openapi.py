"""The OpenAPI 3.1 document of the relay's HTTP interface, served at ``/api/openapi.json``.

Written here, next to the handlers, and kept true by ``tests/test_openapi.py``: every route
of the application is in it and every path in it is a route; the options of ``POST /api/live``
are the ones the parser takes; and the document is valid OpenAPI 3.1.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay.control.protocol import MAX_REASON_CHARS
from relay.webrtc.sdp import SDP_CONTENT_TYPE, TRICKLE_CONTENT_TYPE

__all__ = ["document", "openapi_json"]

Json = dict[str, Any]


def _error(text: str) -> Json:
    return {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}


def _text(text: str) -> Json:
    return {"description": text, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: Json) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    "description": "The live session's id.",
}
TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
    "description": "The link's one-time token.",
}
VIEWER = {
    "name": "viewer",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The viewer session (from the WHEP answer's Location).",
}
CREDENTIAL: list[Json] = [{"viewerCredential": []}]
API: list[Json] = [{"apiKey": []}, {"apiKeyQuery": []}]
GONE = _json(
    "The session has ended: why.",
    {"type": "object", "properties": {"ended": {"type": "boolean"}, "reason": {"type": "string"}}},
)
NO_VIEWER = _text("No such viewer session, or a wrong credential.")
ANSWERED = {
    "description": "The SDP answer.",
    "headers": {
        "Location": {"schema": {"type": "string"}, "description": "The viewer session."},
        "ETag": {"schema": {"type": "string"}, "description": "The ICE session (If-Match)."},
        "Link": {"schema": {"type": "string"}, "description": 'ICE servers, rel="ice-server".'},
        "X-Relay-Credential": {
            "schema": {"type": "string"},
            "description": "The viewer's credential (first offer only).",
        },
    },
    "content": {SDP_CONTENT_TYPE: {"schema": {"type": "string"}}},
}
OFFER = {"required": True, "content": {SDP_CONTENT_TYPE: {"schema": {"type": "string"}}}}
ENDED = _json(
    "The session's outcome.",
    {
        "type": "object",
        "properties": {
            "ended": {"type": "boolean"},
            "reason": {"type": "string"},
            "left": {"type": "boolean"},
            "leaving": {"type": "boolean"},
        },
    },
)
PICTURE = {
    "200": {
        "description": "The page's newest frame as Chromium sent it, shown while the video "
        "connects.",
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}}
            for kind in ("image/jpeg", "image/png")
        },
    },
    "204": {"description": "No frame yet (none came within 1.5 s)."},
}
ICE_CONFIG = _json(
    "STUN/TURN servers for the viewer's peer connection (TURN credentials minted for it).",
    _ref("IceConfig"),
)


def _viewer_post(summary: str, body: Json | None = None) -> Json:
    op: Json = {
        "summary": summary,
        "security": CREDENTIAL,
        "parameters": [VIEWER],
        "responses": {"200": ENDED, "404": NO_VIEWER, "410": GONE},
    }
    if body is not None:
        op["requestBody"] = body
    return {"post": op}


PATHS: Json = {
    "/api/live": {
        "post": {
            "summary": "Create a live session and its one-time link",
            "security": API,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("LiveOptions")}},
            },
            "responses": {
                "201": _json("The session and its link.", _ref("LiveCreated")),
                "400": _error("Bad options, or a target that is not a page."),
                "401": _error("Missing or wrong API key."),
                "404": _error("No such target in that browser."),
                "502": _error("The browser cannot be reached."),
            },
        }
    },
    "/api/live/{id}": {
        "get": {
            "summary": "A session's state",
            "security": API,
            "parameters": [ID],
            "responses": {
                "200": _json("The state.", _ref("LiveState")),
                "401": _error("Missing or wrong API key."),
                "404": _error("No such live session."),
            },
        },
        "delete": {
            "summary": "End a session (reason cancelled); idempotent",
            "security": API,
            "parameters": [ID],
            "responses": {
                "200": _json("The final state.", _ref("LiveState")),
                "401": _error("Missing or wrong API key."),
                "404": _error("No such live session."),
            },
        },
    },
    "/api/live/{id}/events": {
        "get": {
            "summary": "Server-sent events of a session, ending with liveComplete",
            "security": API,
            "parameters": [ID],
            "responses": {
                "200": {
                    "description": "An event stream (docs/events.md).",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "401": _error("Missing or wrong API key."),
                "404": _error("No such live session."),
            },
        }
    },
    "/api/live/{id}/watchers": {
        "post": {
            "summary": "A one-time view-only link to a live session",
            "security": API,
            "parameters": [ID],
            "responses": {
                "201": _json(
                    "The watch link.",
                    {
                        "type": "object",
                        "properties": {
                            "watchURL": {"type": "string"},
                            "expiresAt": {"type": "string", "format": "date-time"},
                        },
                    },
                ),
                "401": _error("Missing or wrong API key."),
                "404": _error("No such live session."),
                "409": _error("The session has ended, or has 50 watchers."),
            },
        }
    },
    "/api/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": _json("OpenAPI 3.1.", {"type": "object"})},
        }
    },
    "/live/{token}/whep": {
        "post": {
            "summary": "WHEP: the first offer spends the link",
            "security": [],
            "parameters": [TOKEN],
            "requestBody": OFFER,
            "responses": {
                "201": ANSWERED,
                "400": _text("The offer cannot be answered."),
                "404": _text("The link is not valid (used, expired or unknown)."),
                "415": _text("Not application/sdp."),
                "503": _text("The page cannot be shown right now."),
            },
        }
    },
    "/live/{token}/config": {
        "get": {
            "summary": "ICE servers for a link's first offer (the link is not spent)",
            "security": [],
            "parameters": [TOKEN],
            "responses": {"200": ICE_CONFIG, "404": _text("The link is not valid.")},
        }
    },
    "/live/{token}/picture": {
        "get": {
            "summary": "The page's picture while the video connects (the link is not spent)",
            "security": [],
            "parameters": [TOKEN],
            "responses": {**PICTURE, "404": _text("The link is not valid.")},
        }
    },
    "/live/session/{viewer}": {
        "delete": {
            "summary": "WHEP: hang up (the person's viewer ends the session, closed)",
            "security": CREDENTIAL,
            "parameters": [VIEWER],
            "responses": {"200": ENDED, "404": NO_VIEWER, "410": GONE},
        },
        "patch": {
            "summary": "WHEP: trickled ICE candidates",
            "security": CREDENTIAL,
            "description": "Authorised by the credential, or by the ICE password of the "
            "viewer's offer in the fragment. ICE restart is not supported.",
            "parameters": [VIEWER],
            "requestBody": {
                "required": True,
                "content": {TRICKLE_CONTENT_TYPE: {"schema": {"type": "string"}}},
            },
            "responses": {
                "204": {"description": "Candidates added."},
                "400": _text("Not a fragment of this ICE session."),
                "404": NO_VIEWER,
                "410": GONE,
                "415": _text(f"Not {TRICKLE_CONTENT_TYPE}."),
                "501": _text("ICE restart (If-Match: *): post a new offer."),
            },
        },
    },
    "/live/session/{viewer}/whep": {
        "post": {
            "summary": "WHEP: a viewer's reconnection",
            "security": CREDENTIAL,
            "parameters": [VIEWER],
            "requestBody": OFFER,
            "responses": {
                "201": ANSWERED,
                "400": _text("The offer cannot be answered."),
                "404": NO_VIEWER,
                "410": GONE,
                "415": _text("Not application/sdp."),
                "503": _text("The page cannot be shown right now."),
            },
        }
    },
    "/live/session/{viewer}/config": {
        "get": {
            "summary": "Fresh ICE servers for a reconnection",
            "security": CREDENTIAL,
            "parameters": [VIEWER],
            "responses": {"200": ICE_CONFIG, "404": NO_VIEWER, "410": GONE},
        }
    },
    "/live/session/{viewer}/picture": {
        "get": {
            "summary": "The page's picture while a reconnection's video connects",
            "security": CREDENTIAL,
            "parameters": [VIEWER],
            "responses": {**PICTURE, "404": NO_VIEWER, "410": GONE},
        }
    },
    "/live/session/{viewer}/done": _viewer_post("The person pressed Done"),
    "/live/session/{viewer}/failed": _viewer_post(
        "The person pressed Can't complete",
        {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"reason": {"type": "string", "maxLength": MAX_REASON_CHARS}},
                    }
                }
            },
        },
    ),
    "/live/session/{viewer}/close": {
        "post": {
            "summary": "The viewer's tab is going away (a beacon; the credential is the body)",
            "security": [],
            "parameters": [VIEWER],
            "requestBody": {"content": {"text/plain": {"schema": {"type": "string"}}}},
            "responses": {"200": ENDED, "404": NO_VIEWER, "410": GONE},
        }
    },
    "/live/{token}": {
        "get": {
            "summary": "The viewer page of a link",
            "security": [],
            "parameters": [TOKEN],
            "responses": {"200": {"description": "HTML."}},
        }
    },
    "/live/": {
        "get": {
            "summary": "The viewer page (a reloaded tab)",
            "security": [],
            "responses": {"200": {"description": "HTML."}},
        }
    },
    "/healthz": {
        "get": {
            "summary": "Liveness",
            "security": [],
            "responses": {"200": _json("Up.", {"type": "object"})},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: Redis, draining, Chromium",
            "security": [],
            "responses": {
                "200": _json("Ready.", _ref("Ready")),
                "503": _json("Not ready, and why.", _ref("Ready")),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "security": API,
            "responses": {
                "200": _text("Prometheus text format."),
                "401": _error("Missing or wrong API key."),
                "404": _text("Served on RELAY_METRICS_PORT instead."),
            },
        }
    },
    "/api/live/{id}/recording": {
        "get": {
            "summary": "The session's audit recording (video/mp4 for H.264, video/webm for VP8)",
            "description": "Range requests are answered (206), so players seek. Readable while "
            "the session runs and at once after it ends; kept RELAY_RECORDING_RETENTION_S.",
            "parameters": [ID],
            "responses": {
                "200": {
                    "description": "The video.",
                    "content": {"video/mp4": {}, "video/webm": {}},
                },
                "206": {"description": "The range asked for."},
                "401": _error("Missing or wrong API key."),
                "404": _error("Not recorded, expired, or nothing was shown."),
            },
        }
    },
    "/api/live/{id}/timeline": {
        "get": {
            "summary": "What happened in a recorded session, in ms from its start",
            "description": "viewerConnected/viewerLeft, navigation (no query), click and tap "
            "(page CSS pixels), typed (how many characters, never which), dialog, upload (names "
            "and sizes), liveComplete.",
            "parameters": [ID],
            "responses": {
                "200": _json("{id, startedAt, events}.", {"type": "object"}),
                "401": _error("Missing or wrong API key."),
                "404": _error("Not recorded, or expired."),
            },
        }
    },
    "/cluster/adopt/{id}": {
        "post": {
            "summary": "Between relays: a stopping relay hands this one a live session",
            "description": "Authenticated with RELAY_CLUSTER_SECRET in X-Relay-Cluster; 404 "
            "without it (not part of the public API).",
            "security": [],
            "parameters": [ID],
            "responses": {
                "200": _json("Running here now (or ended with a reason).", {"type": "object"}),
                "404": _error("Not a relay of this cluster."),
                "409": _error("This relay does not hold that session."),
            },
        }
    },
    "/console": {
        "get": {
            "summary": "The operator console (HTML; 404 without RELAY_OPERATOR_KEYS)",
            "security": [],
            "responses": {"200": {"description": "HTML."}, "404": _text("No console.")},
        }
    },
    "/console/api/signin": {
        "post": {
            "summary": "Operator sign-in: sets the relay_operator cookie",
            "description": 'Body {"key": "..."} (an operator key, not an API key). Answers '
            "the operator's name and the CSRF token that actions send in X-CSRF-Token.",
            "security": [],
            "responses": {
                "200": _json("Signed in (cookie set).", {"type": "object"}),
                "400": _error("No key in the body."),
                "401": _error("Unknown operator key."),
                "403": _error("Not from this relay's origin."),
            },
        }
    },
    "/console/api/signout": {
        "post": {
            "summary": "Operator sign-out (cookie and X-CSRF-Token)",
            "security": [],
            "responses": {
                "200": _json("Signed out.", {"type": "object"}),
                "401": _error("Not signed in."),
                "403": _error("Other origin, or a missing or wrong CSRF token."),
            },
        }
    },
    "/console/api/me": {
        "get": {
            "summary": "The signed-in operator and their CSRF token (cookie)",
            "security": [],
            "responses": {
                "200": _json("Signed in.", {"type": "object"}),
                "401": _error("Not signed in."),
            },
        }
    },
    "/console/api/requests": {
        "get": {
            "summary": "Open requests of every relay: pending and live sessions (cookie)",
            "security": [],
            "responses": {
                "200": _json("The list, oldest first.", {"type": "object"}),
                "401": _error("Not signed in."),
            },
        }
    },
    "/console/api/events": {
        "get": {
            "summary": "Server-sent `requests` events: the list, now and on each change",
            "security": [],
            "responses": {
                "200": _text("text/event-stream."),
                "401": _error("Not signed in."),
            },
        }
    },
    "/console/api/requests/{id}/take": {
        "post": {
            "summary": "Take a request: a fresh one-time link for this operator alone",
            "description": "Cookie and X-CSRF-Token. The request's link stops working; of "
            "operators racing, one gets the link, the others 409 with who took it.",
            "security": [],
            "parameters": [ID],
            "responses": {
                "200": _json("{liveURL, takenBy}.", {"type": "object"}),
                "401": _error("Not signed in."),
                "403": _error("Other origin, or a missing or wrong CSRF token."),
                "404": _error("No such open request."),
                "409": _error("Taken by another operator, or already opened."),
            },
        }
    },
    "/json/version": {
        "get": {
            "summary": "The CDP endpoint's browser version (browserless)",
            "security": API,
            "responses": {"200": _json("Chromium's /json/version.", {"type": "object"})},
        }
    },
}
_CF = "/client/v4/accounts/{account}/{product}/devtools/browser"
_CF_PARAMS: list[Json] = [
    {
        "name": "account",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "Any account id (Cloudflare's path; ignored).",
    },
    {
        "name": "product",
        "in": "path",
        "required": True,
        "schema": {"enum": ["browser-run", "browser-rendering"]},
    },
    {
        "name": "keep_alive",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 600000},
        "description": "ms the browser stays after its client leaves.",
    },
]
_BROWSER: Json = {
    "name": "browser",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The browser's sessionId.",
}
PATHS[_CF] = {
    "get": {
        "summary": "Cloudflare Browser Run: a CDP WebSocket to a new managed Chromium",
        "security": API,
        "parameters": _CF_PARAMS,
        "responses": {
            "101": {"description": "Switching to the WebSocket."},
            "400": _error("Not a WebSocket, or a bad query."),
            "401": _error("Missing or wrong API key."),
            "429": _error("Every browser is busy and the queue is full."),
        },
    },
    "post": {
        "summary": "Cloudflare Browser Run: make a browser before connecting to it",
        "security": API,
        "parameters": [
            *_CF_PARAMS,
            {"name": "targets", "in": "query", "required": False, "schema": {"type": "boolean"}},
        ],
        "responses": {
            "200": _json(
                "The browser: sessionId, webSocketDebuggerUrl, targets "
                "(each with a devtoolsFrontendUrl live link).",
                {"type": "object"},
            ),
            "400": _error("A bad query."),
            "401": _error("Missing or wrong API key."),
            "429": _error("Every browser is busy and the queue is full."),
        },
    },
}
PATHS[_CF + "/{browser}"] = {
    "get": {
        "summary": "Cloudflare Browser Run: a CDP WebSocket to a kept browser",
        "security": API,
        "parameters": [*_CF_PARAMS[:2], _BROWSER],
        "responses": {
            "101": {"description": "Switching to the WebSocket."},
            "404": _error("No such browser, or it has a client."),
        },
    }
}
PATHS[_CF + "/{browser}/json/list"] = {
    "get": {
        "summary": "Cloudflare Browser Run: a kept browser's pages, each with a live link",
        "security": API,
        "parameters": [*_CF_PARAMS[:2], _BROWSER],
        "responses": {
            "200": _json("The pages.", {"type": "array", "items": {"type": "object"}}),
            "404": _error("No such browser."),
        },
    }
}
PATHS["/devtools/browser/{browser}"] = {
    "get": {
        "summary": "A CDP WebSocket back to a kept browser (Browserless.reconnect's endpoint)",
        "security": API,
        "parameters": [_BROWSER],
        "responses": {
            "101": {"description": "Switching to the WebSocket."},
            "400": _error("Not a WebSocket."),
            "404": _error("No such browser, or it has a client."),
        },
    }
}
for _path in ("/", "/chromium", "/chrome"):
    PATHS[_path] = {
        "get": {
            "summary": "The CDP endpoint (browserless-compatible): a WebSocket to a managed "
            "Chromium, with Browserless.liveURL",
            "security": API,
            "parameters": [
                {
                    "name": "timeout",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer"},
                    "description": "The browser's life, ms.",
                },
                {
                    "name": "keep_alive",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer"},
                    "description": "ms the browser stays after the client leaves.",
                },
            ],
            "responses": {
                "101": {"description": "Switching to the WebSocket."},
                "401": _error("Missing or wrong API key."),
                "429": _error("Every browser is busy and the queue is full."),
            },
        }
    }

BOOL = {"type": "boolean"}
SCHEMAS: Json = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "LiveOptions": {
        "type": "object",
        "additionalProperties": False,
        "required": ["browserWSEndpoint"],
        "properties": {
            "browserWSEndpoint": {
                "type": "string",
                "description": "ws:// or http:// of the browser.",
            },
            "targetId": {
                "type": "string",
                "description": "The page target; default: the first page.",
            },
            "quality": {"type": "integer", "minimum": 1, "maximum": 100, "default": 70},
            "type": {"enum": ["jpeg", "png"], "default": "jpeg"},
            "timeout": {"type": "integer", "minimum": 1, "description": "The session's life, ms."},
            "resizable": BOOL,
            "interactable": BOOL,
            "instructions": {"type": "string", "maxLength": 500},
            "completeWhen": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"url": {"type": "string"}, "selector": {"type": "string"}},
            },
            "notify": {
                "description": "Webhooks: a URL, or a list of URLs or {url, format}; "
                "mailto:ADDRESS emails the link.",
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "array",
                        "maxItems": 5,
                        "items": {
                            "oneOf": [
                                {"type": "string"},
                                {
                                    "type": "object",
                                    "properties": {
                                        "url": {"type": "string"},
                                        "format": {"enum": ["json", "slack"]},
                                    },
                                },
                            ]
                        },
                    },
                ],
            },
            "showBrowserInterface": BOOL,
            "viewerPreferences": BOOL,
            "emulateComponents": BOOL,
            "record": {
                "type": "boolean",
                "description": "An audit recording (video and timeline); default RELAY_RECORD.",
            },
        },
    },
    "LiveCreated": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "liveURL": {"type": "string"},
            "expiresAt": {"type": "string", "format": "date-time"},
        },
    },
    "LiveState": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["pending", "live", "reconnecting", "ended"]},
            "reason": {"type": ["string", "null"]},
            "viewerCount": {"type": "integer"},
            "watcherCount": {"type": "integer"},
            "title": {"type": "string"},
            "takenBy": {"type": ["string", "null"]},
            "recording": {
                "type": ["object", "null"],
                "properties": {
                    "url": {"type": "string"},
                    "bytes": {"type": "integer"},
                    "durationMs": {"type": "integer"},
                },
            },
        },
    },
    "IceConfig": {
        "type": "object",
        "properties": {
            "iceServers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "urls": {"type": "array", "items": {"type": "string"}},
                        "username": {"type": "string"},
                        "credential": {"type": "string"},
                    },
                },
            }
        },
    },
    "Ready": {
        "type": "object",
        "properties": {"ready": BOOL, "problems": {"type": "array", "items": {"type": "string"}}},
    },
}


def document(version: str) -> Json:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "live-relay",
            "version": version,
            "description": "Human-in-the-loop browser sessions over WebRTC (README.md).",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "One of RELAY_API_KEYS (when keys are set).",
                },
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "token"},
                "viewerCredential": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "X-Relay-Credential of the WHEP answer.",
                },
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("live-relay")
    except PackageNotFoundError:
        ours = "0"
    return web.json_response(document(ours))
