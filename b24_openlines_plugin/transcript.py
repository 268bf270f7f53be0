"""Chat messages as the platform shows them: plain text, each with its author."""

from __future__ import annotations

import html
import re
from typing import Literal

from b24_openlines_plugin.bitrix.records import SessionHistory
from hooks.models import Language, Message

Author = Literal["visitor", "operator", "system"]

_URL = re.compile(r"\[url=([^\]]+)\](.*?)\[/url\]", re.IGNORECASE | re.DOTALL)
_NAMED = re.compile(
    r"\[(user|chat|call|pch|send|put)=[^\]]*\](.*?)\[/\1\]", re.IGNORECASE | re.DOTALL
)
_BREAK = re.compile(r"\[br\]", re.IGNORECASE)
_TAG = re.compile(r"\[/?[a-z]+(?:=[^\]]*)?\]", re.IGNORECASE)
_BLANKS = re.compile(r"\n{3,}")

AUTHOR_LABELS: dict[str, tuple[str, str]] = {
    "visitor": ("Клиент", "Client"),
    "operator": ("Оператор", "Operator"),
    "system": ("Система", "System"),
}


def bbcode_to_text(text: str) -> str:
    """Bitrix24's BB-code (``[b]``, ``[url=…]…[/url]``, ``[USER=5]Anna[/USER]``…) as plain text."""
    if "[" not in text and "&" not in text and "\n\n\n" not in text:
        return text.strip()  # no tag, no entity, no run of blank lines: most messages

    def link(match: re.Match[str]) -> str:
        target, label = match[1].strip(), match[2].strip()
        return target if not label or label == target else f"{label} ({target})"

    plain = _URL.sub(link, text)
    plain = _NAMED.sub(lambda m: m[2], plain)
    plain = _BREAK.sub("\n", plain)
    plain = _TAG.sub("", plain)
    return _BLANKS.sub("\n\n", html.unescape(plain)).strip()


def messages_of(history: SessionHistory) -> list[Message]:
    """The dialog's messages, oldest first; a connector's user is the visitor, bots are system."""
    messages = []
    for item in history.messages:
        user = history.users.get(item.author_id)
        author: Author
        if item.author_id == 0 or (user is not None and user.is_bot):
            author = "system"
        elif user is not None and user.is_connector:
            author = "visitor"
        else:
            author = "operator"
        text = "\n".join(t for t in [bbcode_to_text(item.text), *item.attachments] if t.strip())
        if text:
            messages.append(Message(at=item.date, author=author, text=text))
    return messages


def transcript_text(messages: list[Message], language: Language) -> str:
    """The conversation as one text: who said what, system notices left out."""
    lines = []
    for message in messages:
        if message.author == "system":
            continue
        ru, en = AUTHOR_LABELS[message.author]
        lines.append(f"{ru if language == 'ru' else en}: {message.text}")
    return "\n".join(lines)
