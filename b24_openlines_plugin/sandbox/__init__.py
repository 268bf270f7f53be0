"""A local stand-in for a Bitrix24 cloud portal and its OAuth server, as seen over HTTP.

Imports nothing else of the plugin nor ``hooks``: it is Bitrix24 from the outside.
"""

from b24_openlines_plugin.sandbox.app import create_sandbox_app
from b24_openlines_plugin.sandbox.chaos import FaultSettings
from b24_openlines_plugin.sandbox.config import (
    ENTERPRISE_RATE,
    STANDARD_RATE,
    RateLimit,
    SandboxConfig,
)
from b24_openlines_plugin.sandbox.state import Sandbox

__all__ = [
    "ENTERPRISE_RATE",
    "STANDARD_RATE",
    "FaultSettings",
    "RateLimit",
    "Sandbox",
    "SandboxConfig",
    "create_sandbox_app",
]
