"""The portal's data: users, open lines, CRM records, chats, sessions, messages and activities.

Plain records and lookups only; what the wire shows of them is in ``records.py`` and
``dialogs.py``, and how they come to be is in ``scenarios.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

CrmKind = Literal["LEAD", "DEAL", "CONTACT"]
OWNER_TYPE_IDS: dict[str, int] = {"LEAD": 1, "DEAL": 2, "CONTACT": 3, "COMPANY": 4}
OPENLINES_PROVIDER = "IMOPENLINES_SESSION"


class SessionStatus(IntEnum):
    """``b_imopenlines_session.STATUS``; 10 <= status < 50 is what ``ACTIVE_ONLY=Y`` keeps."""

    NEW = 0
    SKIP = 5
    ANSWER = 10
    CLIENT = 20
    CLIENT_AFTER_OPERATOR = 25
    OPERATOR = 40
    WAIT_CLIENT = 50
    CLOSE = 60


@dataclass
class User:
    id: int
    first_name: str
    last_name: str = ""
    work_position: str | None = None
    gender: str = "M"
    guest: bool = False  # a connector's client user (externalAuthId "imconnector")
    color: str = "#4ba984"

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class Line:
    id: int
    name: str
    crm_create: Literal["lead", "deal"]
    # The line's CRM_SOURCE setting: None is "create" (Open Lines writes and registers its own
    # ``<line>|<TYPE>`` source), else the SOURCE status every entity of the line gets, as "1"
    # in crm.lead.get's official example.
    crm_source: str | None = None


@dataclass
class MultiField:
    id: int
    type_id: str  # PHONE, EMAIL, WEB, IM
    value_type: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {
            "ID": str(self.id),
            "VALUE_TYPE": self.value_type,
            "VALUE": self.value,
            "TYPE_ID": self.type_id,
        }


@dataclass
class Person:
    """What leads and contacts share: a name and communications."""

    id: int
    name: str
    last_name: str | None
    source_id: str
    assigned_by_id: int
    created_at: float
    modified_at: float
    multifields: list[MultiField] = field(default_factory=list)

    def fields_of(self, type_id: str) -> list[MultiField]:
        return [m for m in self.multifields if m.type_id == type_id]


@dataclass
class Lead(Person):
    title: str = ""
    contact_id: int | None = None
    is_return_customer: bool = False
    status_id: str = "NEW"


@dataclass
class Contact(Person):
    type_id: str = "CLIENT"


@dataclass
class Deal:
    id: int
    title: str
    contact_id: int | None
    source_id: str
    assigned_by_id: int
    created_at: float
    modified_at: float
    stage_id: str = "NEW"
    is_return_customer: bool = False


@dataclass(frozen=True)
class Binding:
    owner_type_id: int
    owner_id: int


@dataclass
class Activity:
    """The CRM activity of one open-line session (provider ``IMOPENLINES_SESSION``)."""

    id: int
    line_id: int
    session_id: int
    user_code: str
    connector: str
    subject: str
    bindings: list[Binding]
    responsible_id: int
    created_at: float
    updated_at: float
    start_time: float
    end_time: float
    completed: bool = False
    answered: bool = False
    provider_id: str = OPENLINES_PROVIDER

    @property
    def owner(self) -> Binding:
        return self.bindings[0]


@dataclass
class Message:
    id: int
    chat_id: int
    session_id: int
    author_id: int  # 0 = system
    text: str
    at: float
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CrmLink:
    """What a session is bound to in CRM; ``kind``/``id`` is the main entity (ENTITY_DATA_1)."""

    kind: CrmKind
    id: int
    lead_id: int = 0
    deal_id: int = 0
    contact_id: int = 0


@dataclass
class Session:
    id: int
    chat_id: int
    line_id: int
    operator_id: int
    started_at: float
    modified_at: float
    status: SessionStatus = SessionStatus.NEW
    closed_at: float | None = None
    crm: CrmLink | None = None
    activity_id: int | None = None
    answered: bool = False

    @property
    def closed(self) -> bool:
        return self.status >= SessionStatus.CLOSE


@dataclass
class Chat:
    """The operator's chat of one client on one line (``ENTITY_TYPE`` LINES)."""

    id: int
    line_id: int
    connector: str
    guest_id: int
    external_chat_id: str
    name: str
    created_at: float
    operator_id: int
    color: str = "#58cc47"
    session_ids: list[int] = field(default_factory=list)
    client_chat_id: int | None = None  # the live-chat widget's own chat (ENTITY_TYPE LIVECHAT)

    @property
    def user_code(self) -> str:
        return f"{self.connector}|{self.line_id}|{self.external_chat_id}|{self.guest_id}"


# Separate id ranges make an id used in the wrong place fail loudly instead of by luck.
ID_START = {
    "user": 500,
    "chat": 1700,
    "message": 85000,
    "session": 300,
    "lead": 1200,
    "deal": 400,
    "contact": 800,
    "activity": 5000,
    "multifield": 11600,
}


class Portal:
    """Everything the portal holds, in memory, keyed by id."""

    def __init__(self) -> None:
        self.users: dict[int, User] = {}
        self.lines: dict[int, Line] = {}
        self.leads: dict[int, Lead] = {}
        self.deals: dict[int, Deal] = {}
        self.contacts: dict[int, Contact] = {}
        self.activities: dict[int, Activity] = {}
        self.chats: dict[int, Chat] = {}
        self.sessions: dict[int, Session] = {}
        self.messages: dict[int, Message] = {}
        self._last_id = dict(ID_START)
        self._seed_staff()

    def _seed_staff(self) -> None:
        for user in (
            User(1, "Alexander", "Ivanov", "Administrator", color="#4ba984"),
            User(2, "Maria", "Sokolova", "Open Lines operator", gender="F", color="#df532d"),
            User(3, "Dmitry", "Orlov", "Sales manager", color="#ab7761"),
        ):
            self.users[user.id] = user
        self.lines[1] = Line(1, "Website and messengers", "lead")
        self.lines[2] = Line(2, "Sales", "deal")

    def add_line(
        self, name: str, crm_create: Literal["lead", "deal"], crm_source: str | None
    ) -> Line:
        line = Line(max(self.lines, default=0) + 1, name, crm_create, crm_source)
        self.lines[line.id] = line
        return line

    def next_id(self, kind: str) -> int:
        self._last_id[kind] += 1
        return self._last_id[kind]

    @property
    def operators(self) -> list[User]:
        return [u for u in self.users.values() if not u.guest and u.id != 1]

    def chat_by_user_code(self, user_code: str) -> Chat | None:
        code = user_code.removeprefix("imol|")
        return next((c for c in self.chats.values() if c.user_code == code), None)

    def last_session(self, chat: Chat) -> Session:
        return self.sessions[chat.session_ids[-1]]

    def add_message(
        self,
        session: Session,
        author_id: int,
        text: str,
        at: float,
        params: dict[str, Any] | None = None,
    ) -> Message:
        message = Message(
            self.next_id("message"), session.chat_id, session.id, author_id, text, at, params or {}
        )
        self.messages[message.id] = message
        session.modified_at = at
        return message

    def session_messages(self, session_id: int) -> list[Message]:
        return [m for m in self.messages.values() if m.session_id == session_id]

    def chat_messages(self, chat_id: int) -> list[Message]:
        return [m for m in self.messages.values() if m.chat_id == chat_id]
