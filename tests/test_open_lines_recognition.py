"""When an entity is an Open Lines chat's: by what it says, or by a dialog Bitrix24 showed of it
(issue 11, item 3). From the official examples: crm.lead.get's lead has ``SOURCE_ID`` "1" (a
line with a fixed source) and an IM link; crm.deal.get's deal has no IM field at all."""

from __future__ import annotations

import pytest

from b24_openlines_plugin.appeals import build_appeal
from b24_openlines_plugin.bitrix.dialogs import ChatRecords, is_open_lines
from b24_openlines_plugin.bitrix.records import CrmEntity
from b24_openlines_plugin.bitrix.wire import parse_activity_bindings, parse_crm_entity
from hooks.errors import RetryLater
from tests.examples import load_json

pytestmark = pytest.mark.anyio
LEAD = load_json("crm.lead.get.json")["result"]


def numeric_source_deal() -> CrmEntity:
    """The official deal, made by a line whose fixed source is the official lead's "1"."""
    deal = load_json("crm.deal.get.json")["result"]
    return parse_crm_entity({**deal, "SOURCE_ID": LEAD["SOURCE_ID"]})


async def test_a_deal_that_says_nothing_is_retried_once_a_dialog_of_it_was_seen() -> None:
    deal = numeric_source_deal()
    assert not is_open_lines(deal)  # no IM field, no "<line>|<TYPE>" source
    nothing = ChatRecords("deal", deal, None, None, None)
    assert await build_appeal(nothing, None) is None  # type: ignore[arg-type]  # not read
    waiting = ChatRecords("deal", deal, None, None, None, chat_seen=True)
    with pytest.raises(RetryLater):
        await build_appeal(waiting, None)  # type: ignore[arg-type]


def test_official_binding_list_is_read() -> None:
    bindings = parse_activity_bindings(load_json("crm.activity.binding.list.json")["result"])
    assert [(b.owner_type_id, b.owner_id) for b in bindings] == [(1, 123), (2, 456), (3, 789)]
