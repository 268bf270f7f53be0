"""The sandbox is Bitrix24 seen from outside: it must not load the host contract or the plugin."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_sandbox_loads_neither_hooks_nor_the_plugin() -> None:
    probe = (
        "import sys, b24_openlines_plugin.sandbox.__main__\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'hooks'"
        " or (m.startswith('b24_openlines_plugin.') and not m.startswith("
        "'b24_openlines_plugin.sandbox'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
