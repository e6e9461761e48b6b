"""The asyncio client: line discipline on a hand-driven pipe, then against modem.sim."""

from __future__ import annotations

import asyncio

import pytest

from modem import commands as C
from modem.client import AtClient
from modem.errors import (
    ClientClosed,
    CmsError,
    CmsErrorCode,
    CommandFailed,
    CommandTimeout,
    ModemDisconnected,
    ProtocolError,
)
from modem.session import Session
from modem.sim import SimModem, create_sim_connection

PROFILES = ["generic", "bg96", "ec25", "sim7600", "sara-r410m"]


class Pipe(asyncio.Transport):
    """A transport the test drives by hand: records writes, injects reads."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.protocol: asyncio.Protocol | None = None
        self.closed = False
        self.on_write = None

    def write(self, data: bytes) -> None:
        self.written += data
        if self.on_write is not None:
            self.on_write(bytes(data))

    def feed(self, data: bytes) -> None:
        assert self.protocol is not None
        self.protocol.data_received(data)

    def close(self) -> None:
        self.closed = True

    def lose(self) -> None:
        assert self.protocol is not None
        self.protocol.connection_lost(OSError("gone"))

    def is_closing(self) -> bool:
        return self.closed


def pipe_client(**kw) -> tuple[AtClient, Pipe]:
    pipe = Pipe()

    async def connector(factory):
        proto = factory()
        pipe.protocol = proto
        proto.connection_made(pipe)
        return pipe, proto

    return AtClient(connector, **kw), pipe


def quick(text="AT+CSQ", timeout=0.2):
    return C.Command(text, C.parse_csq, prefixes=("+CSQ",), timeout=timeout)


def no_leftovers(client: AtClient) -> None:
    left = client.leftovers()
    assert left["inflight"] == 0 and left["lock_waiters"] == 0, left


def sim_client(profile="generic", **opts) -> tuple[AtClient, SimModem]:
    modem = SimModem(profile)

    async def connector(factory):
        return await create_sim_connection(factory, modem, **opts)

    return AtClient(connector), modem


# -- line discipline on the pipe -------------------------------------------------


async def test_simple_command_and_urc_interleaved():
    client, pipe = pipe_client()
    await client.connect()
    sub = client.subscribe()
    pipe.on_write = lambda d: asyncio.get_running_loop().call_soon(
        pipe.feed, b'\r\n+CMTI: "SM",2\r\n+CSQ: 17,99\r\n\r\nOK\r\n'
    )
    sig = await client.execute(C.csq())
    assert sig.rssi == 17
    urc = await sub.get(timeout=1)
    assert urc.name == "+CMTI"
    sub.close()
    await client.close()
    assert client.leftovers() == {"inflight": 0, "subscriptions": 0, "lock_waiters": 0}


async def test_timeout_then_resync_before_next_command():
    client, pipe = pipe_client()
    await client.connect()
    with pytest.raises(CommandTimeout):
        await client.execute(quick())
    no_leftovers(client)
    # the next command first resyncs with AT; answer AT then the command
    answers = [b"\r\nOK\r\n", b"\r\n+CSQ: 3,0\r\nOK\r\n"]

    def on_write(data):
        if data.endswith(b"\r") and answers:
            asyncio.get_running_loop().call_soon(pipe.feed, answers.pop(0))

    pipe.on_write = on_write
    assert (await client.execute(C.csq())).rssi == 3
    assert pipe.written.endswith(b"AT\rAT+CSQ\r")
    await client.close()


async def test_cancel_at_prompt_sends_esc():
    client, pipe = pipe_client()
    await client.connect()
    pipe.on_write = lambda d: asyncio.get_running_loop().call_soon(pipe.feed, b"\r\n> ")
    task = asyncio.create_task(
        client.execute(C.cmgs("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", 24))
    )
    await asyncio.sleep(0.01)
    # prompt seen, PDU written; now a stuck prompt: cancel before the answer
    assert b"\x1a" in pipe.written
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    no_leftovers(client)
    await client.close()


async def test_cancel_while_waiting_for_prompt_writes_esc():
    client, pipe = pipe_client()
    await client.connect()
    # module shows the prompt, but our task is cancelled before it can write the PDU
    task = asyncio.create_task(client.execute(C.cmgs("00", 1)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    pipe.feed(b"\r\n> ")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pipe.written.endswith(b"\x1b")
    no_leftovers(client)
    await client.close()


async def test_error_before_prompt():
    client, pipe = pipe_client()
    await client.connect()
    pipe.on_write = lambda d: asyncio.get_running_loop().call_soon(
        pipe.feed, b"\r\n+CMS ERROR: 304\r\n"
    )
    with pytest.raises(CmsError) as ei:
        await client.execute(C.cmgs("00", 1))
    assert ei.value.code is CmsErrorCode.INVALID_PDU_MODE_PARAMETER and not ei.value.transient
    assert b"\x1a" not in pipe.written
    no_leftovers(client)
    await client.close()


async def test_close_fails_pending_and_ends_subscriptions():
    client, _pipe = pipe_client()
    await client.connect()
    sub = client.subscribe()
    task = asyncio.create_task(client.execute(C.Command("AT+CSQ", C.parse_csq, timeout=5)))
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0.01)
    await client.close()
    with pytest.raises(ClientClosed):
        await task
    with pytest.raises(ClientClosed):
        await waiter
    assert client.leftovers() == {"inflight": 0, "subscriptions": 0, "lock_waiters": 0}
    with pytest.raises(ClientClosed):
        await client.execute(C.csq())


async def test_connection_lost_fails_pending_then_reconnects():
    client, pipe = pipe_client()
    await client.connect()
    task = asyncio.create_task(client.execute(C.Command("AT+CSQ", C.parse_csq, timeout=5)))
    await asyncio.sleep(0.01)
    pipe.lose()
    with pytest.raises(ModemDisconnected):
        await task
    no_leftovers(client)
    assert not client.connected
    with pytest.raises(ModemDisconnected):
        await client.execute(C.csq())
    await client.reconnect(initial=0.01)
    assert client.connected
    await client.close()


async def test_urc_queue_is_bounded():
    client, pipe = pipe_client(urc_queue_size=3)
    await client.connect()
    sub = client.subscribe()
    for i in range(10):
        pipe.feed(f'\r\n+CMTI: "SM",{i}\r\n'.encode())
    assert sub.pending() == 3 and sub.overflowed == 7
    assert (await sub.get()).args == '"SM",7'
    await client.close()


async def test_one_command_in_flight_fifo():
    client, pipe = pipe_client()
    await client.connect()
    lines = []

    def on_write(data):
        lines.append(data)
        asyncio.get_running_loop().call_soon(pipe.feed, b"\r\n+CSQ: 1,1\r\nOK\r\n")

    pipe.on_write = on_write
    results = await asyncio.gather(*(client.execute(C.csq()) for _ in range(5)))
    assert len(results) == 5 and lines == [b"AT+CSQ\r"] * 5
    await client.close()


async def test_bad_response_is_protocol_error():
    client, pipe = pipe_client()
    await client.connect()
    pipe.on_write = lambda d: asyncio.get_running_loop().call_soon(
        pipe.feed, b"\r\n+CSQ: banana\r\nOK\r\n"
    )
    with pytest.raises(ProtocolError):
        await client.execute(C.csq())
    await client.close()


# -- against the simulator ---------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("delivery", ["whole", "bytewise", "delayed"])
async def test_session_init_every_profile(profile, delivery):
    client, modem = sim_client(profile, delivery=delivery, delay=0.001)
    await client.connect()
    session = Session(client)
    await session.initialize()
    assert session.identity.imei == modem.profile.imei
    assert session.identity.iccid.startswith("8901")
    assert session.registered
    assert (await session.signal_quality()).rssi <= 31
    session.close()
    await client.close()
    assert client.leftovers() == {"inflight": 0, "subscriptions": 0, "lock_waiters": 0}


async def test_lossy_line_recovers():
    client, _modem = sim_client("generic", delivery="lossy", loss=0.02, seed=3)
    await client.connect()
    ok = 0
    for _ in range(40):
        try:
            await client.execute(quick(timeout=0.2))
            ok += 1
        except (CommandTimeout, ProtocolError, CommandFailed):
            pass
    assert ok > 20
    no_leftovers(client)
    await client.close()


async def test_sim_hang_then_reboot():
    client, modem = sim_client()
    await client.connect()
    await client.execute(quick())
    modem.fault("hang")
    with pytest.raises(CommandTimeout):
        await client.execute(quick(timeout=0.1))
    no_leftovers(client)
    modem.fault("reboot")
    await asyncio.sleep(0.2)
    await client.sync()
    assert (await client.execute(quick())).rssi >= 0
    await client.close()


async def test_sim_disconnect_and_back():
    client, modem = sim_client()
    await client.connect()
    modem.fault("disconnect", 50)
    await asyncio.wait_for(client.wait_lost(), 1)
    with pytest.raises(ModemDisconnected):
        await client.execute(quick())
    await client.reconnect(initial=0.02)
    await client.sync()
    await client.execute(quick())
    no_leftovers(client)
    await client.close()


async def test_sim_url_connector():
    client = AtClient.from_url("sim://bg96")
    await client.connect()
    assert client.sim_modem is not None
    ident = await client.execute(C.identity("AT+CGMM"))
    assert ident == "BG96"
    await client.close()
