"""Starting chats the way Bitrix24 does, so the plugin meets the same records and events.

A chat creates the guest user, the operator chat (ENTITY_TYPE LINES, ENTITY_ID = USER_CODE)
and a session (NEW; ANSWER once an operator writes); the first visitor message registers the
session in CRM (``crm_registration``). Closing completes the session's activity.

The live-chat widget's custom data is kept per guest, the latest a page sent (for 8 hours, as
Bitrix24's ``Widget\\Cache``), and written into a dialog once, when the dialog is created: a
system message ``[B]Data received:[/B]`` whose attach holds the blocks (imopenlines
``Connector::addMessage``). Pages that send it later change what the next dialog gets, never
the dialog under way.
"""

from __future__ import annotations

from typing import Any

from b24_openlines_plugin.sandbox import channels
from b24_openlines_plugin.sandbox.config import SandboxConfig
from b24_openlines_plugin.sandbox.crm_registration import CrmPlan, CrmRegistrar, Emit
from b24_openlines_plugin.sandbox.inputs import (
    ChatStart,
    MessageIn,
    MessagesIn,
    SessionStart,
    Visitor,
)
from b24_openlines_plugin.sandbox.portal import (
    Chat,
    CrmLink,
    Portal,
    Session,
    SessionStatus,
    User,
)

COLORS = ("#58cc47", "#df532d", "#ab7761", "#4ba984", "#ba9c7b", "#2fc6f6", "#f76187")
CUSTOM_DATA_TTL = 8 * 60 * 60  # Bitrix24's widget cache keeps it 8 hours
CUSTOM_DATA_TITLE = "[B]Data received:[/B]"  # IMOL_CONNECTOR_RECEIVED_DATA (en)


class ScenarioError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def custom_data_blocks(custom_data: str | list[Any]) -> list[dict[str, Any]]:
    """The widget's setCustomData(): a string is ``[{MESSAGE: x}]``, a list keeps its objects."""
    if isinstance(custom_data, str):
        return [{"MESSAGE": custom_data}]
    return [block for block in custom_data if isinstance(block, dict)]


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _attach_block(block: dict[str, Any]) -> dict[str, Any]:
    """Attach blocks as the history shows them: lower-case keys, USER/LINK items in lists."""
    out: dict[str, Any] = {}
    for key, value in block.items():
        name = str(key).lower()
        if isinstance(value, dict):
            out[name] = [_lower_keys(value)]
        else:
            out[name] = _lower_keys(value)
    return out


class Scenarios:
    def __init__(self, portal: Portal, config: SandboxConfig, emit: Emit) -> None:
        self.portal = portal
        self.config = config
        self.emit = emit
        self.crm = CrmRegistrar(portal, config, emit)
        self._plans: dict[int, CrmPlan] = {}
        self._visitors: dict[int, Visitor] = {}
        self._custom_data: dict[int, tuple[float, list[dict[str, Any]]]] = {}  # by guest user
        self._next_operator = 0

    def now(self) -> float:
        return self.config.clock()

    # --- chats ----------------------------------------------------------------------------

    def start_chat(self, request: ChatStart) -> dict[str, Any]:
        portal = self.portal
        if request.connector not in channels.TITLES:
            raise ScenarioError(422, f"unknown connector {request.connector!r}")
        line = portal.lines.get(request.line_id)
        if line is None:
            raise ScenarioError(422, f"no open line {request.line_id}")
        contact = None
        if request.returning_contact_id is not None:
            contact = portal.contacts.get(request.returning_contact_id)
            if contact is None:
                raise ScenarioError(404, f"no contact {request.returning_contact_id}")
        visitor = request.visitor or Visitor()
        if contact is not None and not visitor.name:
            visitor = visitor.model_copy(
                update={"name": f"{contact.name} {contact.last_name or ''}"}
            )
        operator = self._operator(request.operator_id)
        now = self.now()

        first, _, last = (visitor.name or "Guest").strip().partition(" ")
        guest = User(portal.next_id("user"), first, last, guest=True, color="#ab7761")
        portal.users[guest.id] = guest
        client_chat_id = portal.next_id("chat") if request.connector == "livechat" else None
        chat_id = portal.next_id("chat")
        external = (
            str(client_chat_id)
            if client_chat_id is not None
            else channels.external_chat_id(request.connector, chat_id, visitor.phone)
        )
        chat = Chat(
            id=chat_id,
            line_id=line.id,
            connector=request.connector,
            guest_id=guest.id,
            external_chat_id=external,
            name=f"{guest.name} - {line.name}",
            created_at=now,
            operator_id=operator.id,
            color=COLORS[chat_id % len(COLORS)],
            client_chat_id=client_chat_id,
        )
        portal.chats[chat.id] = chat
        self._visitors[chat.id] = visitor
        plan = CrmPlan(
            contact_id=contact.id if contact else None,
            contact_owner=request.activity_owner == "contact",
            late_activity=request.late_activity,
        )
        if contact is not None and not request.new_lead:
            plan.reuse = CrmLink("CONTACT", contact.id, contact_id=contact.id)
        self.keep_custom_data(chat, request.custom_data)
        session = self._open_session(chat, plan)
        self._run(chat, session, request.messages, request.close)
        return self.summary(chat)

    def add_messages(self, chat_id: int, request: MessagesIn) -> dict[str, Any]:
        chat = self._chat(chat_id)
        self.keep_custom_data(chat, request.custom_data)  # the page's data request comes first
        session = self.portal.last_session(chat)
        if session.closed:
            raise ScenarioError(409, "the session is closed: start a new one (POST .../sessions)")
        self._run(chat, session, request.messages, request.close)
        return self.summary(chat)

    def close(self, chat_id: int) -> dict[str, Any]:
        chat = self._chat(chat_id)
        session = self.portal.last_session(chat)
        if session.closed:
            raise ScenarioError(409, "the session is already closed")
        self._close(chat, session)
        return self.summary(chat)

    def new_session(self, chat_id: int, request: SessionStart) -> dict[str, Any]:
        """A returning client: a new session (and activity) in the same chat."""
        chat = self._chat(chat_id)
        previous = self.portal.last_session(chat)
        if not previous.closed:
            raise ScenarioError(409, "the last session is still open")
        plan = CrmPlan(
            contact_id=(previous.crm.contact_id or None) if previous.crm else None,
            contact_owner=request.activity_owner == "contact",
            late_activity=request.late_activity,
        )
        if not request.new_lead and previous.crm is not None:
            plan.reuse = previous.crm
        self.keep_custom_data(chat, request.custom_data)
        session = self._open_session(chat, plan)
        self._run(chat, session, request.messages, request.close)
        return self.summary(chat)

    def summary(self, chat: Chat) -> dict[str, Any]:
        session = self.portal.last_session(chat)
        crm = session.crm
        return {
            "chat_id": chat.id,
            "session_id": session.id,
            "user_code": chat.user_code,
            "connector": chat.connector,
            "line_id": chat.line_id,
            "guest_user_id": chat.guest_id,
            "operator_id": chat.operator_id,
            "client_chat_id": chat.client_chat_id,
            "session_status": int(session.status),
            "lead_id": (crm.lead_id or None) if crm else None,
            "deal_id": (crm.deal_id or None) if crm else None,
            "contact_id": (crm.contact_id or None) if crm else None,
            "activity_id": session.activity_id,
            "sessions": list(chat.session_ids),
        }

    # --- steps ----------------------------------------------------------------------------

    def _chat(self, chat_id: int) -> Chat:
        chat = self.portal.chats.get(chat_id)
        if chat is None:
            raise ScenarioError(404, f"no chat {chat_id}")
        return chat

    def _operator(self, operator_id: int | None) -> User:
        operators = self.portal.operators
        if operator_id is not None:
            found = next((u for u in operators if u.id == operator_id), None)
            if found is None:
                raise ScenarioError(422, f"no operator {operator_id}")
            return found
        self._next_operator += 1
        return operators[(self._next_operator - 1) % len(operators)]

    def keep_custom_data(self, chat: Chat, custom_data: str | list[Any] | None) -> None:
        """What a widget page sent (``widget.user.register``/``widget.dialog.get``), kept for
        the guest's next dialog; nothing sent keeps what was."""
        blocks = custom_data_blocks(custom_data) if custom_data else []
        if blocks:
            self._custom_data[chat.guest_id] = (self.now(), blocks)

    def _open_session(self, chat: Chat, plan: CrmPlan) -> Session:
        now = self.now()
        session = Session(
            self.portal.next_id("session"), chat.id, chat.line_id, chat.operator_id, now, now
        )
        self.portal.sessions[session.id] = session
        chat.session_ids.append(session.id)
        self._plans[session.id] = plan
        kept_at, blocks = self._custom_data.get(chat.guest_id, (0.0, []))
        if blocks and now - kept_at < CUSTOM_DATA_TTL:
            attach = {
                "id": int(now),
                "blocks": [_attach_block(b) for b in blocks],
                "description": "",
                "color": chat.color,
            }
            params = {
                "class": "bx-messenger-content-item-system",
                "componentId": "HiddenMessage",
                "attach": [attach],
            }
            self.portal.add_message(session, 0, CUSTOM_DATA_TITLE, now, params)
        return session

    def _run(self, chat: Chat, session: Session, messages: list[MessageIn], close: bool) -> None:
        for message in messages:
            if message.author == "visitor":
                self._visitor_writes(chat, session, message.text)
            else:
                self._operator_writes(chat, session, message.text)
        if close:
            self._close(chat, session)

    def _visitor_writes(self, chat: Chat, session: Session, text: str) -> None:
        self.portal.add_message(session, chat.guest_id, text, self.now())
        if session.answered:
            session.status = SessionStatus.CLIENT_AFTER_OPERATOR
        if session.crm is None:
            plan = self._plans.pop(session.id, CrmPlan())
            self.crm.register(chat, session, plan, self._visitors.get(chat.id, Visitor()))
        else:
            self.crm.register_late(chat, session)

    def _operator_writes(self, chat: Chat, session: Session, text: str) -> None:
        self.crm.register_late(chat, session)
        self.portal.add_message(session, session.operator_id, text, self.now())
        if session.answered:
            session.status = SessionStatus.OPERATOR
            return
        session.answered = True
        session.status = SessionStatus.ANSWER
        activity = self.portal.activities.get(session.activity_id or 0)
        if activity is not None:
            activity.answered = True
            activity.updated_at = self.now()
            self.emit("ONCRMACTIVITYUPDATE", activity.id)

    def _close(self, chat: Chat, session: Session) -> None:
        self.crm.register_late(chat, session)
        now = self.now()
        ending = {"class": "bx-messenger-content-item-ol-end"}
        self.portal.add_message(session, 0, "Dialogue completed.", now, ending)
        session.status = SessionStatus.CLOSE
        session.closed_at = now
        activity = self.portal.activities.get(session.activity_id or 0)
        if activity is not None:
            activity.completed = True
            activity.end_time = now
            activity.updated_at = now
            self.emit("ONCRMACTIVITYUPDATE", activity.id)
