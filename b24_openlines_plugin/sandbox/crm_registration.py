"""How Open Lines registers a session in CRM, as crm.php and crm/activity.php do.

Line 1 makes a lead, line 2 a contact and a deal; a known contact gets the chat's IM link; a
returning client may get no new lead at all, only the session's IMOPENLINES_SESSION activity.
Each record fires its event the moment it exists. The activity's first binding is its owner
(``OWNER_TYPE_ID``/``OWNER_ID``); a plan can make that the contact, with the new lead or deal
a second binding, and can register the activity only at the session's next step, after its
lead or deal's event went out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from b24_openlines_plugin.sandbox import channels
from b24_openlines_plugin.sandbox.config import SandboxConfig
from b24_openlines_plugin.sandbox.inputs import Visitor
from b24_openlines_plugin.sandbox.portal import (
    OWNER_TYPE_IDS,
    Activity,
    Binding,
    Chat,
    Contact,
    CrmLink,
    Deal,
    Lead,
    MultiField,
    Portal,
    Session,
)

Emit = Callable[[str, int], None]


@dataclass
class CrmPlan:
    """What the first visitor message of a session will do in CRM."""

    contact_id: int | None = None
    reuse: CrmLink | None = None  # no new lead/deal: bind the activity to these records
    contact_owner: bool = False  # the contact owns the activity; the lead/deal is bound second
    late_activity: bool = False  # the activity comes with the session's next message or close


class CrmRegistrar:
    def __init__(self, portal: Portal, config: SandboxConfig, emit: Emit) -> None:
        self.portal = portal
        self.config = config
        self.emit = emit
        self._late: dict[int, CrmPlan] = {}  # session id → the plan of its activity to come

    def now(self) -> float:
        return self.config.clock()

    def register(self, chat: Chat, session: Session, plan: CrmPlan, visitor: Visitor) -> None:
        """At the first visitor message: the lead (or contact and deal), then the activity."""
        line = self.portal.lines[chat.line_id]
        if plan.reuse is not None:
            session.crm = dataclasses.replace(plan.reuse)
            if plan.reuse.contact_id:
                self._add_chat_to_contact(chat, plan.reuse.contact_id)
        elif line.crm_create == "lead":
            if plan.contact_id:
                self._add_chat_to_contact(chat, plan.contact_id)
            session.crm = self._create_lead(chat, session, visitor, plan.contact_id)
        else:
            session.crm = self._create_deal(chat, session, visitor, plan.contact_id)
        if plan.late_activity:
            self._late[session.id] = plan
        else:
            self._create_activity(chat, session, plan)

    def register_late(self, chat: Chat, session: Session) -> None:
        """The activity of a session whose plan put it off, at the session's next step."""
        plan = self._late.pop(session.id, None)
        if plan is not None:
            self._create_activity(chat, session, plan)

    def _communications(self, chat: Chat, visitor: Visitor) -> list[MultiField]:
        fields = []
        if visitor.phone:
            fields.append(
                MultiField(self.portal.next_id("multifield"), "PHONE", "WORK", visitor.phone)
            )
        if visitor.email:
            fields.append(
                MultiField(self.portal.next_id("multifield"), "EMAIL", "WORK", visitor.email)
            )
        fields.append(self._im_field(chat))
        return fields

    def _im_field(self, chat: Chat) -> MultiField:
        return MultiField(
            self.portal.next_id("multifield"),
            "IM",
            channels.communication_type(chat.connector),
            f"imol|{chat.user_code}",
        )

    def _source(self, chat: Chat) -> str:
        line = self.portal.lines[chat.line_id]
        return channels.source_id(line.id, chat.connector, line.crm_source)

    def _names(self, chat: Chat) -> tuple[str, str | None]:
        guest = self.portal.users[chat.guest_id]
        if guest.first_name == "Guest" and not guest.last_name:
            return "", None
        return guest.first_name, guest.last_name or None

    def _create_lead(
        self, chat: Chat, session: Session, visitor: Visitor, contact_id: int | None
    ) -> CrmLink:
        now = self.now()
        name, last_name = self._names(chat)
        lead = Lead(
            id=self.portal.next_id("lead"),
            name=name,
            last_name=last_name,
            source_id=self._source(chat),
            assigned_by_id=session.operator_id,
            created_at=now,
            modified_at=now,
            multifields=self._communications(chat, visitor),
            title=chat.name,
            contact_id=contact_id,
            is_return_customer=contact_id is not None,
        )
        self.portal.leads[lead.id] = lead
        self._announce(chat, session, "lead", lead.id, lead.title, visitor)
        self.emit("ONCRMLEADADD", lead.id)
        return CrmLink("LEAD", lead.id, lead_id=lead.id, contact_id=contact_id or 0)

    def _create_deal(
        self, chat: Chat, session: Session, visitor: Visitor, contact_id: int | None
    ) -> CrmLink:
        now = self.now()
        source = self._source(chat)
        if contact_id is None:
            name, last_name = self._names(chat)
            contact = Contact(
                id=self.portal.next_id("contact"),
                name=name,
                last_name=last_name,
                source_id=source,
                assigned_by_id=session.operator_id,
                created_at=now,
                modified_at=now,
                multifields=self._communications(chat, visitor),
            )
            self.portal.contacts[contact.id] = contact
            self.emit("ONCRMCONTACTADD", contact.id)
            returning = False
        else:
            contact = self.portal.contacts[contact_id]
            self._add_chat_to_contact(chat, contact.id)
            returning = True
        deal = Deal(
            id=self.portal.next_id("deal"),
            title=chat.name,
            contact_id=contact.id,
            source_id=source,
            assigned_by_id=session.operator_id,
            created_at=now,
            modified_at=now,
            is_return_customer=returning,
        )
        self.portal.deals[deal.id] = deal
        self._announce(chat, session, "deal", deal.id, deal.title, visitor)
        self.emit("ONCRMDEALADD", deal.id)
        return CrmLink("DEAL", deal.id, deal_id=deal.id, contact_id=contact.id)

    def _add_chat_to_contact(self, chat: Chat, contact_id: int) -> None:
        """A known contact writing from a new chat gets that chat's IM link (an update)."""
        contact = self.portal.contacts[contact_id]
        if any(m.value == f"imol|{chat.user_code}" for m in contact.fields_of("IM")):
            return
        contact.multifields.append(self._im_field(chat))
        contact.modified_at = self.now()
        self.emit("ONCRMCONTACTUPDATE", contact.id)

    def _announce(
        self, chat: Chat, session: Session, kind: str, entity_id: int, title: str, visitor: Visitor
    ) -> None:
        name = visitor.name or self.portal.users[chat.guest_id].name
        grid = [{"display": "ROW", "name": "Name", "value": name, "colorToken": "base"}]
        if visitor.phone:
            grid.append(
                {"display": "LINE", "name": "Phone", "value": visitor.phone, "colorToken": "base"}
            )
        if visitor.email:
            grid.append(
                {"display": "LINE", "name": "E-mail", "value": visitor.email, "colorToken": "base"}
            )
        attach = {
            "id": int(self.now()),
            "blocks": [
                {"link": [{"name": title, "link": f"/crm/{kind}/details/{entity_id}/"}]},
                {"grid": grid},
            ],
            "description": "",
            "color": "#df532d",
        }
        text = f"[b]A new {kind} has been created[/b]"
        self.portal.add_message(session, 0, text, self.now(), {"attach": [attach]})

    def _create_activity(self, chat: Chat, session: Session, plan: CrmPlan) -> None:
        crm = session.crm
        assert crm is not None
        bindings = [Binding(OWNER_TYPE_IDS[crm.kind], crm.id)]
        if crm.contact_id and crm.kind != "CONTACT":
            contact = Binding(OWNER_TYPE_IDS["CONTACT"], crm.contact_id)
            bindings = [contact, *bindings] if plan.contact_owner else [*bindings, contact]
        now = self.now()
        activity = Activity(
            id=self.portal.next_id("activity"),
            line_id=chat.line_id,
            session_id=session.id,
            user_code=chat.user_code,
            connector=chat.connector,
            subject=chat.name,
            bindings=bindings,
            responsible_id=session.operator_id,
            created_at=now,
            updated_at=now,
            start_time=session.started_at,
            end_time=session.started_at,
            answered=session.answered,
        )
        self.portal.activities[activity.id] = activity
        session.activity_id = activity.id
        self.emit("ONCRMACTIVITYADD", activity.id)

    def seed(self) -> None:
        """Records that did not come from a chat: a call, a web form, a callback deal."""
        portal = self.portal
        then = self.now() - 2 * 86400
        for title, name, source, phone in (
            ("Incoming call", "Olga", "CALL", "+74951234567"),
            ("Web form: price request", "Pavel", "WEBFORM", "+79161112233"),
        ):
            lead_id = portal.next_id("lead")
            portal.leads[lead_id] = Lead(
                id=lead_id,
                name=name,
                last_name=None,
                source_id=source,
                assigned_by_id=2,
                created_at=then,
                modified_at=then,
                multifields=[MultiField(portal.next_id("multifield"), "PHONE", "WORK", phone)],
                title=title,
            )
        contact_id = portal.next_id("contact")
        portal.contacts[contact_id] = Contact(
            id=contact_id,
            name="Irina",
            last_name="Kozlova",
            source_id="CALLBACK",
            assigned_by_id=3,
            created_at=then,
            modified_at=then,
            multifields=[
                MultiField(portal.next_id("multifield"), "PHONE", "MOBILE", "+79035556677"),
                MultiField(portal.next_id("multifield"), "EMAIL", "WORK", "irina@example.com"),
            ],
        )
        deal_id = portal.next_id("deal")
        portal.deals[deal_id] = Deal(
            deal_id, "Callback request", contact_id, "CALLBACK", 3, then, then
        )
