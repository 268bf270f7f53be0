"""Many chats in one call, so a soak test of 1,000 chats does not need 1,000 HTTP requests.

Each chat is started exactly as ``POST /sandbox/api/chats`` starts one (same records, same
events, through the same fault knobs); only the visitors, messages and closings are drawn from
a seeded RNG. Closings come after all chats have started, as dialogs end later in real life.
"""

from __future__ import annotations

import random
from typing import Any

from b24_openlines_plugin.sandbox import channels
from b24_openlines_plugin.sandbox.inputs import BulkChats, ChatStart, MessageIn, Visitor
from b24_openlines_plugin.sandbox.portal import SessionStatus
from b24_openlines_plugin.sandbox.scenarios import ScenarioError, Scenarios

FIRST = ("Anna", "Ivan", "Olga", "Pavel", "Elena", "Sergey", "Maria", "Dmitry", "Irina", "Oleg")
LAST = ("Petrova", "Smirnov", "Kuznetsova", "Popov", "Volkova", "Sokolov", "Lebedeva", "Novikov")
VISITOR_LINES = (
    "Hello, how much is delivery?",
    "Is this still in stock?",
    "Can I pay on receipt?",
    "What are your opening hours?",
    "I'd like to order the blue one.",
    "Thanks!",
)
OPERATOR_LINES = (
    "Hello! Let me check that for you.",
    "Yes, we have it.",
    "Delivery takes two days.",
    "Sure, I will send you the details.",
)


def _visitor(rng: random.Random, index: int, with_contacts: bool) -> Visitor:
    if rng.random() < 0.1:
        return Visitor()  # an anonymous guest
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    if not with_contacts:
        return Visitor(name=name)
    phone = f"+79{rng.randrange(10**8, 10**9)}" if rng.random() < 0.7 else None
    email = f"client{index}@example.test" if rng.random() < 0.4 else None
    return Visitor(name=name, phone=phone, email=email)


def _messages(rng: random.Random) -> list[MessageIn]:
    """1 to 4 messages; the visitor writes first, then either side."""
    messages = [MessageIn(author="visitor", text=rng.choice(VISITOR_LINES))]
    for _ in range(rng.randint(1, 4) - 1):
        if rng.random() < 0.5:
            messages.append(MessageIn(author="operator", text=rng.choice(OPERATOR_LINES)))
        else:
            messages.append(MessageIn(author="visitor", text=rng.choice(VISITOR_LINES)))
    return messages


def start_many(scenarios: Scenarios, request: BulkChats) -> dict[str, Any]:
    unknown = sorted(set(request.mix) - set(channels.TITLES))
    if unknown:
        raise ScenarioError(422, f"unknown connectors {unknown}")
    missing = sorted(set(request.lines) - set(scenarios.portal.lines))
    if missing:
        raise ScenarioError(422, f"no open lines {missing}")
    rng = random.Random(None if request.seed is None else f"bulk:{request.seed}")
    contacts: list[int] = []
    chat_ids: list[int] = []
    for index in range(request.count):
        returning = None
        if request.with_contacts and contacts and rng.random() < request.returning_share:
            returning = rng.choice(contacts)
        started = scenarios.start_chat(
            ChatStart(
                connector=rng.choice(request.mix),
                line_id=rng.choice(request.lines),
                visitor=None if returning else _visitor(rng, index, request.with_contacts),
                messages=_messages(rng),
                returning_contact_id=returning,
            )
        )
        chat_ids.append(started["chat_id"])
        if started["contact_id"] and started["contact_id"] not in contacts:
            contacts.append(started["contact_id"])
    if request.close:
        closing = [c for c in chat_ids if rng.random() < request.close_share]
        rng.shuffle(closing)
        for chat_id in closing:
            scenarios.close(chat_id)
    summaries = [scenarios.summary(scenarios.portal.chats[c]) for c in chat_ids]
    return {"count": len(summaries), "chats": [_brief(s) for s in summaries]}


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "chat_id",
        "session_id",
        "connector",
        "line_id",
        "lead_id",
        "deal_id",
        "contact_id",
        "activity_id",
        "user_code",
    )
    return {
        **{key: summary[key] for key in keys},
        "closed": summary["session_status"] >= SessionStatus.CLOSE,
    }
