"""Helpers for tests and benchmarks of live-relay (and of code built on it): an aiortc WHEP
viewer, source pages in a real Chromium, a Playwright viewer, and small waits. Shipped in the
package, as aiohttp ships ``aiohttp.test_utils``; Playwright is imported only where used."""
