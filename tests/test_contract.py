"""The extension point keeps its promises: discovery, manifest, documentation, isolation."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import pytest

from hooks import NAME, hookimpl, specs
from hooks.host.plugins import get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
SPEC_NAMES = sorted(
    name for name, fn in inspect.getmembers(specs, inspect.isfunction) if name.startswith("on_")
)


def manifest() -> dict[str, object]:
    return tomllib.loads((ROOT / "plugin.toml").read_text(encoding="utf-8"))


def test_plugin_found_through_the_real_entry_point() -> None:
    host = get_plugin_manager()
    assert "b24_openlines" in host.names()
    assert host.failures == []
    plugin = host.pm.get_plugin("b24_openlines")
    assert plugin is not None and plugin.__name__ == "b24_openlines_plugin.plugin"


def test_manifest_matches_the_package_and_the_registered_hooks() -> None:
    data = manifest()
    host = get_plugin_manager()
    assert data["name"] == "b24_openlines"
    assert data["entry_point_group"] == NAME
    assert data["entry_point"] == "b24_openlines_plugin.plugin"
    assert sorted(data["hooks"]) == sorted(host.hook_names("b24_openlines"))  # type: ignore[arg-type]
    assert data["bitrix24"] == {"scopes": ["crm", "imopenlines", "im", "contact_center"]}
    setup_cfg = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert "b24_openlines = b24_openlines_plugin.plugin" in setup_cfg


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_hookspec_is_documented(name: str) -> None:
    """Each spec says when it is called, every argument, what it returns and what None means."""
    fn = getattr(specs, name)
    doc = inspect.getdoc(fn) or ""
    assert "Called" in doc, f"{name}: say when it is called"
    for arg in inspect.signature(fn).parameters:
        assert f":param {arg}:" in doc, f"{name}: document argument {arg}"
    assert ":return:" in doc and "``None``" in doc, (
        f"{name}: say what it returns and what None means"
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`{name}`" in readme, f"{name}: name it in the README's hook list"


def test_all_specs_are_firstresult() -> None:
    """The host asks the owning plugin only; the contract says every hook is firstresult."""
    host = get_plugin_manager(load_entrypoints=False)
    for name in SPEC_NAMES:
        assert getattr(host.pm.hook, name).spec.opts["firstresult"] is True


class MisspelledHook:
    """A plugin whose hook name matches no spec: ``check_pending`` must refuse it."""

    @hookimpl
    def on_webook(self) -> None:  # the typo is the point of the test
        return None


def test_a_plugin_with_an_unknown_hook_is_refused_and_recorded() -> None:
    host = get_plugin_manager(extra={"typo": MisspelledHook()})
    assert "typo" not in host.names()
    assert [f.name for f in host.failures] == ["typo"]
    assert "on_webook" in host.failures[0].error
    assert "b24_openlines" in host.names()  # the others still load


def test_blocked_plugins_are_not_loaded() -> None:
    host = get_plugin_manager(blocked=["b24_openlines"])
    assert "b24_openlines" not in host.names()


def install_broken_plugin(root: Path) -> None:
    """A real installed distribution whose entry point raises on import."""
    (root / "broken_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    info = root / "broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{NAME}]\nbroken = broken_plugin\n")


def test_a_plugin_that_fails_to_import_is_recorded_and_the_rest_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_broken_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    host = get_plugin_manager()
    assert [f.name for f in host.failures] == ["broken"]
    assert "boom at import" in host.failures[0].error
    assert host.names() == ["b24_openlines"]
