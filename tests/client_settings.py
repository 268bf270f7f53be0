"""The settings a client enters for the sandbox portal, as the settings API takes them."""

from __future__ import annotations

from typing import Any


def sandbox_settings(
    app: dict[str, Any], portal: str, application_token: str, **more: Any
) -> dict[str, Any]:
    """The sandbox application's credentials on ``portal``, switched on, leads, the demo
    catalog's employee 2 and default source 6 on site 1; ``more`` adds or replaces keys."""
    return {
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "portal": portal,
        "active": True,
        "entity": "lead",
        "employee_id": 2,
        "traffic_type": "source",
        "source_id": 6,
        "site_id": 1,
        "application_token": application_token,
        **more,
    }
