"""Unit tests: pure logic and in-process pieces only. Nothing here needs a browser, Redis or
a display, and this conftest imports nothing heavy, so ``pytest tests/unit`` runs anywhere."""
