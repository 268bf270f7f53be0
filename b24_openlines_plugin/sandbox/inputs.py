"""What the test API and the pages send to start and continue chats (pydantic-validated)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# Who owns the session's activity (its first binding): the new lead or deal, or the contact,
# the lead or deal then bound second. ``late_activity``: Bitrix24 registers the activity only
# with the session's next message (or its close), after the lead's or deal's event went out.
ActivityOwner = Literal["entity", "contact"]


class Visitor(BaseModel):
    name: str | None = None
    phone: str | None = None
    email: str | None = None


class MessageIn(BaseModel):
    author: Literal["visitor", "operator"] = "visitor"
    text: str = Field(min_length=1)


class ChatStart(BaseModel):
    """``POST /sandbox/api/chats``: a client writes to an open line from a messenger."""

    connector: str = "livechat"
    line_id: int = 1
    visitor: Visitor | None = None
    messages: list[MessageIn] = Field(default_factory=list)
    close: bool = False
    returning_contact_id: int | None = None
    new_lead: bool = True
    # What the widget's setCustomData() collected: a string, or attach blocks (other items of
    # a list are dropped, as the widget drops them).
    custom_data: str | list[Any] | None = None
    operator_id: int | None = None
    activity_owner: ActivityOwner = "entity"
    late_activity: bool = False


class LineIn(BaseModel):
    """``POST /sandbox/api/lines``: a new open line. ``crm_source`` is its fixed CRM source (a
    SOURCE status id such as "1"); none: Open Lines writes ``<line>|<TYPE>``."""

    name: str = Field(min_length=1)
    crm_create: Literal["lead", "deal"] = "lead"
    crm_source: str | None = Field(default=None, min_length=1, max_length=50)


class MessagesIn(BaseModel):
    messages: list[MessageIn] = Field(min_length=1)
    close: bool = False
    # What a widget page sends with its data request; kept for the guest's next dialog.
    custom_data: str | list[Any] | None = None


class SessionStart(BaseModel):
    """``POST /sandbox/api/chats/{id}/sessions``: the client comes back after a closed dialog."""

    messages: list[MessageIn] = Field(default_factory=list)
    new_lead: bool = True
    close: bool = False
    custom_data: str | list[Any] | None = None
    activity_owner: ActivityOwner = "entity"
    late_activity: bool = False


class BulkChats(BaseModel):
    """``POST /sandbox/api/chats/bulk``: many chats in one call, for soak tests."""

    count: int = Field(ge=1, le=5000)
    # Connectors picked at random, per chat; lines too (1 makes leads, 2 contacts and deals).
    mix: list[str] = Field(
        default_factory=lambda: ["livechat", "telegrambot", "whatsappbyedna", "vkgroup"],
        min_length=1,
    )
    lines: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    # After all chats started, this share of them is closed, in random order.
    close: bool = True
    close_share: float = Field(default=0.6, ge=0.0, le=1.0)
    # Visitors leave phones and e-mails, and some chats come from contacts made earlier.
    with_contacts: bool = True
    returning_share: float = Field(default=0.15, ge=0.0, le=1.0)
    seed: int | None = None
