"""The layout keeps its promises: stages depend one way, the SDK stays light, and the aiortc
internals the relay adapts are where it expects them."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

import relay
from relay.errors import RelayError
from relay.events import END_REASONS, Reason

PACKAGE = Path(relay.__file__).parent
# Lower layers never import higher ones; the order is the pipeline's (docs/architecture.md).
LAYERS = [
    "relay.errors", "relay.tokens", "relay.logs", "relay.events", "relay.metrics",
    "relay.store", "relay.client", "relay.browser", "relay.video", "relay.webrtc",
    "relay.control", "relay.sessions", "relay.cluster", "relay.config", "relay.http", "relay.cli",
    "relay.testing",
]  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every relay module this file imports, TYPE_CHECKING blocks and function bodies included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("relay"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("relay"))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: use absolute imports (from relay.x import y)")
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}


def _layer(module: str) -> int:
    return max(
        i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")
    )


def test_every_module_has_a_layer() -> None:
    for module in _graph():
        if module != "relay":
            _layer(module)  # raises ValueError (max of nothing) for a module of no layer


def test_dependencies_point_one_way() -> None:
    wrong = [
        f"{m} -> {i}"
        for m, deps in _graph().items()
        if m != "relay"
        for i in deps
        if i != "relay" and _layer(i) > _layer(m)
    ]
    assert wrong == []


def test_no_import_cycle() -> None:
    graph = _graph()
    graph.pop("relay")
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in graph.get(module, ()):
            if state.get(dep) == 1:
                raise AssertionError(" -> ".join([*path, module, dep]))
            if dep not in state:
                visit(dep, [*path, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_the_sdk_imports_neither_media_nor_the_server() -> None:
    code = (
        "import json, sys, relay, relay.client\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiortc', 'av', 'numpy', 'aioice') or m.startswith(('relay.http', 'relay.sessions')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_package_exports_the_sdk_only() -> None:
    assert set(relay.__all__) == {
        "Event", "EventType", "Live", "LiveRelay", "LiveRelayError", "Outcome", "Reason",
        "RelayError", "__version__", "request_human",
    }  # fmt: skip


def test_every_error_is_a_relay_error() -> None:
    import relay.errors as errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), RelayError), name


def test_one_list_of_end_reasons() -> None:
    from relay.http.cdp_options import BROWSERLESS_REASONS

    assert set(END_REASONS) == set(get_args(Reason))
    assert set(BROWSERLESS_REASONS) == set(get_args(Reason))


def test_the_viewer_says_everything_in_each_of_its_languages() -> None:
    """messages.json: the same keys in every language, a text for every end reason, the
    same {placeholders}; every key the viewer's code and page use is in the table."""
    table = json.loads((PACKAGE / "web" / "messages.json").read_text())
    assert set(table) == {"en", "de"}
    english = table["en"]
    for lang, words in table.items():
        assert set(words) == set(english), lang
        for key, text in words.items():
            assert re.findall(r"\{\w+\}", text) == re.findall(r"\{\w+\}", english[key]), key
    assert {f"reason.{r}" for r in END_REASONS} <= set(english)
    web = PACKAGE / "web"
    code = "".join((web / name).read_text() for name in ("viewer.js", "files.js"))
    used = set(re.findall(r"""\bt\(\s*["'`]([\w.]+)["'`]""", code))
    used |= set(
        re.findall(r'data-i18n(?:-label|-title|-ph)?="([\w.]+)"', (web / "index.html").read_text())
    )
    used |= set(re.findall(r"""["']((?:file|state\.)[\w.]*)["']""", code)) & set(english)
    assert used, "no keys found: the patterns are out of date"
    assert used <= set(english), used - set(english)


async def test_the_aiortc_members_we_adapt_are_there() -> None:
    from relay.webrtc import aiortc_compat

    missing = await aiortc_compat.missing_members()
    assert missing == [], (
        f"aiortc moved {missing}: adapt relay/webrtc/aiortc_compat.py, or pin aiortc lower"
    )


@pytest.mark.parametrize("name", ["index.html", "viewer.js", "input.js", "viewer.css"])
def test_the_viewer_ships_in_the_package(name: str) -> None:
    assert (PACKAGE / "web" / name).is_file()


def test_the_aioice_members_we_adapt_are_there() -> None:
    from relay.webrtc import aioice_compat

    missing = aioice_compat.missing_members()
    assert missing == [], f"aioice moved {missing}: adapt relay/webrtc/aioice_compat.py"
