"""``make run``'s arrangement for real: the host and the sandbox portal as two server processes on
loopback ports, a client going through connect → chat → appeal over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Servers, running_servers


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    with running_servers(tmp_path / "host.sqlite3") as running:
        yield running


def test_a_sandbox_chat_reaches_raw_data_through_real_servers(servers: Servers) -> None:
    integration = servers.integration()
    servers.connect(integration["id"])
    chat = servers.client.post(
        f"{servers.portal_url}/sandbox/api/chats",
        json={
            "connector": "livechat",
            "visitor": {"name": "Real Visitor", "phone": "+79001112233"},
            "messages": [{"author": "visitor", "text": "Через настоящие сокеты"}],
        },
    )
    assert chat.status_code == 201, chat.text
    [appeal] = servers.appeals()
    assert appeal["contact"] == {"name": "Real Visitor", "phones": ["+79001112233"], "emails": []}
    assert "Через настоящие сокеты" in appeal["text"]
    assert "Real Visitor" in servers.client.get(f"{servers.host_url}/raw/appeals").text
