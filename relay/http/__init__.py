"""The HTTP surface: the aiohttp app, API-key checks, the REST and SSE API for scripts, the
viewer page and WHEP routes, and the browserless-compatible CDP endpoint."""
