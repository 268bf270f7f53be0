"""Which words in a dialog name its visit: the widget's custom data alone, never typed text.

Histories are the official ``imopenlines.session.history.get`` example with messages added
the way Bitrix24 writes them: the widget's custom data as a system message whose attach holds
the blocks (imopenlines ``Connector::addMessage``), a visitor's and an operator's messages with
their authors, a form's answers as an attach grid.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from b24_openlines_plugin.bitrix.wire import parse_session_history
from b24_openlines_plugin.marker import MARKERS, visit_in_block, visit_of_dialog
from b24_openlines_plugin.site_script import render_site_script
from hooks.models import Language
from tests.examples import load_json

LANGUAGES: list[Language] = ["ru", "en"]

VISIT = "Vq3nX0aZk1-Pq_8sLw2m9Q" + "h5Tj0cV-Rk2yQ8sLw2m9Qa"  # a signed id's shape: 44 chars
GUEST = {"id": "587", "name": "John", "connector": True, "bot": False}
BOT = {"id": "90", "name": "Helper", "connector": False, "bot": True}


def history(*messages: dict[str, Any]) -> dict[str, Any]:
    """The official example's result, with ``messages`` added after its own two."""
    result: dict[str, Any] = copy.deepcopy(
        load_json("imopenlines.session.history.get.json")["result"]
    )
    result["users"] |= {"587": GUEST, "90": BOT}
    for n, message in enumerate(messages, start=90000):
        result["message"][str(n)] = {
            "id": str(n),
            "chatid": "1763",
            "date": "2026-03-11T13:20:00+01:00",
            "text": "",
            **message,
        }
    return result


def attach(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"attach": [{"id": 1, "blocks": list(blocks), "description": "", "color": "#000"}]}


def custom_data(line: str, sender: str = "0") -> dict[str, Any]:
    """The system message Bitrix24 writes with the widget's custom data."""
    return {
        "senderid": sender,
        "text": "[B]Data received:[/B]",
        "params": {
            "class": "bx-messenger-content-item-system",
            "componentId": "HiddenMessage",
            **attach({"message": line}),
        },
    }


def named(result: dict[str, Any], connector: str = "livechat") -> str | None:
    return visit_of_dialog(parse_session_history(result), connector)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_custom_data_names_the_visit_in_either_language(language: Language) -> None:
    line = f"{MARKERS[language]}: {VISIT}"
    assert named(history(custom_data(line))) == VISIT
    assert named(history(custom_data(f"  {line}\n"))) == VISIT
    assert visit_in_block(line) == VISIT


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"senderid": "587", "text": f"Analytics session: {VISIT}"}, id="visitor"),
        pytest.param({"senderid": "587", "text": f"Сессия аналитики: {VISIT}"}, id="visitor-ru"),
        pytest.param({"senderid": "103", "text": f"Analytics session: {VISIT}"}, id="operator"),
        pytest.param(
            custom_data(f"Analytics session: {VISIT}", sender="103"), id="operator-attach"
        ),
        pytest.param(custom_data(f"Analytics session: {VISIT}", sender="90"), id="bot-attach"),
        pytest.param(custom_data(f"Analytics session: {VISIT}", sender="587"), id="guest-attach"),
        pytest.param({"senderid": "0", "text": f"Analytics session: {VISIT}"}, id="system-text"),
        pytest.param(
            {
                "senderid": "0",
                "text": "[b]A new lead has been created[/b]",
                "params": attach({"grid": [{"name": "", "value": f"Analytics session: {VISIT}"}]}),
            },
            id="form-answer",
        ),
        pytest.param(custom_data(f"Analytics session: {VISIT} thanks"), id="more-words"),
        pytest.param(custom_data(f"Hi. Analytics session: {VISIT}"), id="words-before"),
    ],
)
def test_nothing_but_the_widgets_custom_data_is_believed(message: dict[str, Any]) -> None:
    assert named(history(message)) is None


def test_custom_data_counts_in_site_chats_only() -> None:
    line = custom_data(f"Analytics session: {VISIT}")
    assert named(history(line), "telegrambot") is None
    assert named(history(line), "livechat") == VISIT


def test_the_first_custom_data_message_counts() -> None:
    other = "Zz3nX0aZk1-Pq_8sLw2m9Q" + "h5Tj0cV-Rk2yQ8sLw2m9Qa"
    first = custom_data(f"Analytics session: {VISIT}")
    assert named(history(first, custom_data(f"Analytics session: {other}"))) == VISIT


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_site_script_writes_the_marker_in_the_hosts_language(language: Language) -> None:
    script = render_site_script(endpoint="https://a.example/s/1", getter="g", language=language)
    other: Language = "en" if language == "ru" else "ru"
    assert json.dumps(MARKERS[language])[1:-1] in script  # as the script's JSON config spells it
    assert json.dumps(MARKERS[other])[1:-1] not in script
