"""One hook's view of an integration: what every part of a delivery or a run reads."""

from __future__ import annotations

from dataclasses import dataclass

from b24_openlines_plugin.settings import B24Settings, stored_settings
from b24_openlines_plugin.state import Connection, connection_of, not_connected
from hooks.models import Integration
from hooks.services import HostServices


@dataclass(frozen=True)
class Portal:
    """One hook's view of an integration: its settings and connection, each read once."""

    integration: Integration
    settings: B24Settings
    connection: Connection
    host: HostServices

    @classmethod
    def of(cls, integration: Integration, host: HostServices) -> Portal:
        return cls(integration, stored_settings(integration), connection_of(integration), host)

    @property
    def id(self) -> int:
        return self.integration.id

    @property
    def member_id(self) -> str:
        if not self.connection.member_id:
            raise not_connected()
        return self.connection.member_id
