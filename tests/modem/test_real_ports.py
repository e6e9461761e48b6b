"""The client over real OS ports: a pty and TCP (socket://), via pyserial-asyncio-fast."""

from __future__ import annotations

import asyncio

import pytest

from modem.client import AtClient
from modem.errors import Fault, UsageError
from modem.sim import SimModem
from modem.sim.endpoints import PtyEndpoint, TcpEndpoint
from modem.sms import ReceivedMessage
from modem.stack import ModemStack


async def _receive_and_reply(client: AtClient, sim: SimModem) -> None:
    got: list[ReceivedMessage] = []
    two = asyncio.Event()

    async def consumer(item):
        got.append(item)
        if len(got) >= 2:
            two.set()

    sim.deliver("before start")
    async with ModemStack(client, consumer=consumer) as stack:
        await stack.wait_ready(10)
        sim.deliver("live")
        await stack.guard(asyncio.wait_for(two.wait(), 10))
        result = await stack.sms.send("2936", "pong")
        assert len(result.mrs) == 1
    assert [g.text for g in got] == ["before start", "live"]
    assert sim.mo_log[-1].message.tp_ud.text == "pong"
    assert client.leftovers() == {"inflight": 0, "subscriptions": 0, "lock_waiters": 0}


@pytest.mark.parametrize("profile", ["generic", "bg96", "ec25", "sim7600", "sara-r410m", "minimal"])
async def test_over_pty(tmp_path, profile):
    sim = SimModem(profile)
    pty = PtyEndpoint(sim, str(tmp_path / "ttySIM0"))
    pty.start()
    try:
        client = AtClient.from_url(str(tmp_path / "ttySIM0"))
        await client.connect()
        await _receive_and_reply(client, sim)
    finally:
        pty.close()


async def test_over_tcp_socket_url():
    sim = SimModem("ec25")
    tcp = TcpEndpoint(sim)
    await tcp.start()
    try:
        client = AtClient.from_url(f"socket://127.0.0.1:{tcp.port}")
        await client.connect()
        await _receive_and_reply(client, sim)
    finally:
        await tcp.close() if asyncio.iscoroutinefunction(tcp.close) else tcp.close()


async def test_pty_vanishes_and_returns(tmp_path):
    """USB re-enumeration: the port disappears, the supervisor reconnects, nothing is lost."""
    sim = SimModem("ec25")
    link = str(tmp_path / "ttyUSB2")
    pty = PtyEndpoint(sim, link)
    pty.start()
    try:
        got: list[str] = []
        arrived = asyncio.Event()

        async def consumer(item):
            got.append(item.text)
            arrived.set()

        async with ModemStack(AtClient.from_url(link), consumer=consumer) as stack:
            await stack.wait_ready(10)
            sim.fault("disconnect", 150)
            sim.deliver("while the port was gone")
            await stack.guard(asyncio.wait_for(arrived.wait(), 15))
            assert got == ["while the port was gone"]
            assert stack.session.stats["reconnects"] >= 1
    finally:
        pty.close()


@pytest.mark.parametrize("url", ["rfc2217://127.0.0.1:2217", "RFC2217://h:1", "loop://"])
def test_url_handlers_without_a_file_descriptor_are_refused_clearly(url):
    # pyserial-asyncio-fast waits on the port's fd; these pyserial handlers have
    # none (and rfc2217 refuses write_timeout=0), so they fail at once, by name,
    # with the workaround, instead of deep inside the transport.
    with pytest.raises(UsageError, match=r"(?i)ports are not supported.*socket://HOST:PORT") as e:
        AtClient.from_url(url)
    assert url.partition("://")[0].lower() in str(e.value)
    assert e.value.fault is Fault.CALLER
