"""The analytics platform's extension point: markers, contract models, services and errors.

Plugins import from here and never from ``hooks.host``. One name, ``analytics_host``, is the
pluggy project name, the marker name and the entry-point group, so a plugin is found by
declaring ``[options.entry_points] analytics_host = name = module``.
"""

from typing import Final

import pluggy

NAME: Final = "analytics_host"

hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)
"""Marker for plugins' hook implementations."""

__all__ = ["NAME", "hookimpl", "hookspec"]
