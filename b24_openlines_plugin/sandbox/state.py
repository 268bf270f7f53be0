"""The running sandbox: one portal, its local application, tokens, limits, handlers and faults."""

from __future__ import annotations

from dataclasses import dataclass, field

from b24_openlines_plugin.sandbox.chaos import Chaos
from b24_openlines_plugin.sandbox.config import SandboxConfig
from b24_openlines_plugin.sandbox.delivery import Deliveries
from b24_openlines_plugin.sandbox.errors import KNOWN, RestError
from b24_openlines_plugin.sandbox.events import EventHub
from b24_openlines_plugin.sandbox.limits import LeakyBucket, OperatingBudget
from b24_openlines_plugin.sandbox.oauth import LocalApp, TokenStore
from b24_openlines_plugin.sandbox.offline import OfflineQueue
from b24_openlines_plugin.sandbox.portal import Portal
from b24_openlines_plugin.sandbox.scenarios import Scenarios


@dataclass
class Fault:
    """An error a test asks for: the next ``times`` calls of ``method`` ("*" = any) fail with it."""

    method: str
    error: str
    description: str
    status: int
    times: int

    def to_json(self) -> dict[str, object]:
        return {
            "method": self.method,
            "error": self.error,
            "error_description": self.description,
            "status": self.status,
            "times": self.times,
        }


@dataclass
class Faults:
    pending: list[Fault] = field(default_factory=list)

    def add(
        self, method: str, error: str, times: int, status: int | None, description: str | None
    ) -> Fault:
        known_status, known_text = KNOWN.get(error, (400, error))
        fault = Fault(
            method.lower(), error, description or known_text, status or known_status, times
        )
        self.pending.append(fault)
        return fault

    def take(self, method: str) -> RestError | None:
        for fault in self.pending:
            if fault.method in ("*", method.lower()):
                fault.times -= 1
                if fault.times <= 0:
                    self.pending.remove(fault)
                return RestError(fault.error, fault.description, fault.status)
        return None


DEMO_TELEGRAM_BOT = "garden_shop_bot"
DEMO_WHATSAPP_NUMBER = "79990001122"
DEMO_VIBER_URI = "gardenshop"


@dataclass
class DemoSite:
    """The demo website's "CMS" settings: the code its owner put into every page's <head>, and
    whom its "Написать в …" buttons write to (its Telegram bot, WhatsApp number, Viber URI)."""

    head_html: str = ""
    telegram_bot: str = DEMO_TELEGRAM_BOT
    whatsapp_number: str = DEMO_WHATSAPP_NUMBER
    viber_uri: str = DEMO_VIBER_URI


class Sandbox:
    """What ``app.state.sandbox`` holds; tests reach in here for the clock-free parts."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.portal = Portal()
        self.app = LocalApp(
            client_id=config.client_id,
            client_secret=config.client_secret,
            redirect_uri=config.redirect_uri,
            scopes=list(config.scopes),
            application_token=config.application_token,
        )
        self.tokens = TokenStore(config.clock)
        self.chaos = Chaos(config.faults, config.clock)
        self.offline = OfflineQueue(config.clock, config.timezone)
        self.sender = Deliveries(config, self.chaos)
        self.events = EventHub(config, self.app, self.tokens, self.sender, self.offline)
        self.scenarios = Scenarios(self.portal, config, self.events.emit)
        self.bucket = LeakyBucket(config.rate_limit, config.clock) if config.rate_limit else None
        self.operating = OperatingBudget(config.operating_limit, config.clock)
        self.faults = Faults()
        self.site = DemoSite()
        if config.seed_crm:
            self.scenarios.crm.seed()

    def now(self) -> float:
        return self.config.clock()

    async def deliveries_settled(self) -> None:
        """Return once every queued event delivery has been attempted (each is tried once)."""
        await self.sender.settled()
