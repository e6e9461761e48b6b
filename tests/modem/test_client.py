"""The asyncio client: line discipline on a hand-driven pipe, then against modem.sim."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

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

PROFILES = ["generic", "bg96", "ec25", "sim7600", "sara-r410m", "minimal"]


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


async def test_prompt_gets_the_pdu_from_the_data_callback():
    """The PDU and Ctrl-Z go out in the callback that reads the prompt (TS
    27.005 §3.5.1), not one loop turn later: the module never waits on our
    task. A cancel after that is too late to quit the prompt: no ESC (it
    would spoil the module's next line), and the next command resyncs."""
    client, pipe = pipe_client()
    await client.connect()
    pdu_hex = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    task = asyncio.create_task(client.execute(C.cmgs(pdu_hex, 24)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert pipe.written == b"AT+CMGS=24\r"
    pipe.feed(b"\r\n> ")
    assert pipe.written == b"AT+CMGS=24\r" + pdu_hex.encode() + b"\x1a"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pipe.written == b"AT+CMGS=24\r" + pdu_hex.encode() + b"\x1a"
    assert client._needs_resync
    no_leftovers(client)
    await client.close()


async def test_cancel_while_waiting_for_prompt_writes_esc():
    client, pipe = pipe_client()
    await client.connect()
    task = asyncio.create_task(client.execute(C.cmgs("00", 1)))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert pipe.written == b"AT+CMGS=1\r"
    task.cancel()  # no prompt yet: it may still come, and would swallow the next line
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pipe.written == b"AT+CMGS=1\r\x1b"
    no_leftovers(client)
    await client.close()


async def test_cancel_after_the_pdu_went_out_sends_no_esc_then_resyncs():
    client, pipe = pipe_client()
    await client.connect()
    pipe.on_write = lambda d: asyncio.get_running_loop().call_soon(pipe.feed, b"\r\n> ")
    task = asyncio.create_task(
        client.execute(C.cmgs("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", 24))
    )
    await asyncio.sleep(0.01)
    assert pipe.written.endswith(b"\x1a")  # prompt seen, PDU written
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the PDU is out: an ESC cannot take it back; the line is resynced instead
    assert pipe.written.endswith(b"\x1a") and b"\x1b" not in pipe.written
    no_leftovers(client)
    mark = len(pipe.written)
    answers = [b"\r\nOK\r\n", b"\r\n+CSQ: 3,0\r\nOK\r\n"]

    def on_write(data):
        if data.endswith(b"\r") and answers:
            asyncio.get_running_loop().call_soon(pipe.feed, answers.pop(0))

    pipe.on_write = on_write
    assert (await client.execute(C.csq())).rssi == 3
    assert bytes(pipe.written[mark:]) == b"\x1bAT\rAT+CSQ\r"
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


async def test_late_callbacks_from_a_previous_connection_are_ignored():
    # After a reconnect, the old transport's late data or connection_lost must
    # neither feed old bytes into the new session nor tear the new link down.
    client, modem = sim_client()
    await client.connect()
    old = client._line_protocol
    modem.fault("disconnect", 50)
    await asyncio.wait_for(client.wait_lost(), 1)
    await client.reconnect(initial=0.02)
    await client.sync()
    assert client._line_protocol is not old
    disconnects = client.stats["disconnects"]
    bytes_in = client.stats["bytes_in"]
    old.data_received(b"\r\n+CME ERROR: 10\r\n")  # would fail the next command
    old.connection_lost(ConnectionResetError("old port"))
    assert client.connected
    assert client.stats["disconnects"] == disconnects
    assert client.stats["bytes_in"] == bytes_in
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


async def test_sim_cancel_before_prompt_leaves_line_in_sync():
    client, modem = sim_client()
    await client.connect()
    await client.sync()
    modem.fault("delay", 50)
    task = asyncio.create_task(
        client.execute(C.cmgs("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", 23))
    )
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    modem.fault("clear")
    assert (await client.execute(C.csq())).rssi >= 0
    assert not modem.mo_log  # nothing was sent
    no_leftovers(client)
    await client.close()


async def test_session_enters_configured_pin():
    from modem.errors import SimProblem, SimProblemKind
    from modem.session import SessionConfig

    modem = SimModem("bg96", pin="1234")

    async def connector(factory):
        return await create_sim_connection(factory, modem)

    client = AtClient(connector)
    await client.connect()
    with pytest.raises(SimProblem) as ei:  # no PIN configured: say so, never guess
        await Session(client).initialize()
    assert ei.value.kind is SimProblemKind.PIN_REQUIRED
    session = Session(client, SessionConfig(pin="1234"))
    await session.initialize()
    assert session.pin_state is not None and session.pin_state.value == "READY"
    assert session.identity.imsi
    session.close()
    await client.close()


async def test_sim_url_with_pin():
    from modem.errors import SimProblem, SimProblemKind
    from modem.session import SessionConfig

    client = AtClient.from_url("sim://generic?pin=4321")
    await client.connect()
    assert client.sim_modem.pin == "4321"
    with pytest.raises(SimProblem) as ei:  # the SIM really asks for it
        await Session(client).initialize()
    assert ei.value.kind is SimProblemKind.PIN_REQUIRED
    session = Session(client, SessionConfig(pin="4321"))
    await session.initialize()
    assert session.pin_state is C.PinState.READY and session.identity.imsi
    session.close()
    await client.close()


async def test_registration_tracked_from_urcs():
    client, modem = sim_client("ec25")
    await client.connect()
    session = Session(client)
    await session.initialize()
    sub_task = asyncio.create_task(session.run())
    try:
        assert session.registered
        modem.fault("unregister")
        async with asyncio.timeout(2):
            while session.registered:
                await asyncio.sleep(0.01)
        commands_before = client.stats["commands"]
        modem.fault("register")
        async with asyncio.timeout(2):
            while not session.registered:
                await asyncio.sleep(0.01)
        assert client.stats["commands"] == commands_before  # from URCs, not queries
    finally:
        sub_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sub_task
    session.close()
    await client.close()


async def test_sim_drop_fault_recovers():
    client, modem = sim_client()
    await client.connect()
    modem.fault("drop", 0.3)
    for _ in range(5):
        with contextlib.suppress(CommandTimeout, ProtocolError, CommandFailed):
            await client.execute(quick(timeout=0.1))
    modem.fault("clear")
    await client.sync()
    assert (await client.execute(quick())).rssi >= 0
    no_leftovers(client)
    await client.close()


async def test_resync_waits_out_a_late_answer():
    """A late OK of a timed-out command must not be taken as the next command's answer."""
    client, pipe = pipe_client()
    await client.connect()
    with pytest.raises(CommandTimeout):
        await client.execute(quick(timeout=0.05))
    loop = asyncio.get_running_loop()
    writes = []

    def on_write(data):
        writes.append(data)
        if data == b"AT\r" and writes.count(b"AT\r") == 1:
            # the aborted command's late OK, then the probe's own OK a moment later
            loop.call_soon(pipe.feed, b"\r\nOK\r\n")
            loop.call_later(0.02, pipe.feed, b"\r\nOK\r\n")
        elif data == b"AT\r":
            loop.call_soon(pipe.feed, b"\r\nOK\r\n")
        elif data == b"AT+CSQ\r":
            loop.call_soon(pipe.feed, b"\r\n+CSQ: 9,9\r\nOK\r\n")

    pipe.on_write = on_write
    assert (await client.execute(C.csq())).rssi == 9
    assert writes == [b"\x1b", b"AT\r", b"AT\r", b"AT+CSQ\r"]  # ESC first, then probes
    await client.close()


async def test_pause_between_commands_and_trace_log(caplog):
    from modem.client import TRACE

    client, pipe = pipe_client(pause=0.05)
    await client.connect()
    loop = asyncio.get_running_loop()
    stamps = []

    def on_write(data):
        stamps.append(loop.time())
        loop.call_soon(pipe.feed, b"\r\n+CSQ: 1,1\r\nOK\r\n")

    pipe.on_write = on_write
    with caplog.at_level(TRACE, logger="modem.client.trace"):
        await client.execute(C.csq())
        await client.execute(C.csq())
    assert stamps[1] - stamps[0] >= 0.045
    raw = [r.getMessage() for r in caplog.records if r.levelno == TRACE]
    assert any("-> b'AT+CSQ\\r'" in m for m in raw) and any("<- " in m for m in raw)
    await client.close()


async def test_supervisor_reports_missing_pin_and_stays_up(caplog):
    from modem.errors import Fault, SimProblem, SimProblemKind

    modem = SimModem("generic", pin="1234")

    async def connector(factory):
        return await create_sim_connection(factory, modem)

    client = AtClient(connector)
    await client.connect()
    session = Session(client)
    task = asyncio.create_task(session.run())
    with pytest.raises(SimProblem) as ei:
        await asyncio.wait_for(session.wait_ready(), 5)
    assert ei.value.kind is SimProblemKind.PIN_REQUIRED and ei.value.fault is Fault.OPERATOR
    assert session.sim_problem is ei.value and not task.done()  # the process stays up
    # the module still answers queries while the SIM waits for a person
    assert (await client.execute(C.identity("AT+CGMM"))) == modem.profile.model
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "PIN" in errors[0].getMessage()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    session.close()
    await client.close()


async def test_idle_client_sends_nothing():
    """No polling: a started, idle session and SMS service write no command."""
    from modem.sms import SmsService

    client, _modem = sim_client()
    await client.connect()
    session = Session(client)

    async def sink(item):
        return None

    service = SmsService(session, sink)
    async with asyncio.TaskGroup() as tg:
        t1 = tg.create_task(session.run())
        t2 = tg.create_task(service.run())
        await session.ready.wait()
        await asyncio.sleep(0.1)  # start-up sweep done
        before = dict(client.stats)
        await asyncio.sleep(0.3)
        assert client.stats["commands"] == before["commands"]
        assert client.stats["bytes_out"] == before["bytes_out"]
        t1.cancel()
        t2.cancel()
    session.close()
    await client.close()


async def test_failed_resync_is_retried_before_the_next_command(fast_timing):
    # the module stayed mute through the whole resync: the line is still not known
    # to be in sync, so the command after that must resync first too (a late OK of
    # a probe would otherwise answer it)
    client, pipe = pipe_client()
    await client.connect()
    with pytest.raises(CommandTimeout):
        await client.execute(quick())
    with pytest.raises(CommandTimeout):
        await client.execute(quick())  # resync fails: every AT times out
    no_leftovers(client)
    mark = len(pipe.written)
    answers = [b"\r\nOK\r\n", b"\r\n+CSQ: 3,0\r\nOK\r\n"]

    def on_write(data):
        if data.endswith(b"\r") and answers:
            asyncio.get_running_loop().call_soon(pipe.feed, answers.pop(0))

    pipe.on_write = on_write
    assert (await client.execute(C.csq())).rssi == 3
    assert bytes(pipe.written[mark:]) == b"\x1bAT\rAT+CSQ\r"
    await client.close()


async def test_damaged_cpin_answer_is_asked_again_not_a_config_error(fast_timing, monkeypatch):
    # noise turned "+CPIN: READY" into something unknown: device input, not a
    # misconfiguration - the session asks again instead of raising UsageError
    import dataclasses

    real = C.cpin_query
    damaged = [True]

    def parse_once_damaged(response):
        if damaged:
            damaged.pop()
            return C.PinState.OTHER
        return C.parse_cpin(response)

    monkeypatch.setattr(
        C, "cpin_query", lambda: dataclasses.replace(real(), parser=parse_once_damaged)
    )
    client, _ = sim_client()
    await client.connect()
    session = Session(client)
    await session.initialize()
    assert session.pin_state is C.PinState.READY and not damaged
    session.close()
    await client.close()


async def _queued_pair(client, pipe):
    """+CSQ in flight and +CREG? queued behind it."""
    first = asyncio.create_task(client.execute(C.csq()))
    for _ in range(3):
        await asyncio.sleep(0)
    second = asyncio.create_task(client.execute(C.creg_query()))
    for _ in range(3):
        await asyncio.sleep(0)
    assert pipe.written == b"AT+CSQ\r"
    return first, second


async def test_next_command_written_one_loop_turn_after_the_final_result():
    """The line passes on in the data callback that reads the final result:
    the next command's task is the only one that has to run before its line
    goes out (the owner's resumption is not waited for)."""
    client, pipe = pipe_client()
    await client.connect()
    first, second = await _queued_pair(client, pipe)
    pipe.feed(b"\r\n+CSQ: 20,99\r\nOK\r\n")
    await asyncio.sleep(0)
    assert pipe.written == b"AT+CSQ\rAT+CREG?\r"
    pipe.feed(b"\r\n+CREG: 0,1\r\nOK\r\n")
    assert (await first).rssi == 20
    assert (await second).stat == 1
    no_leftovers(client)
    await client.close()


async def test_owner_cancelled_after_its_final_result_leaves_the_next_command_alone():
    """Its command ended cleanly: no ESC, no resync, the next command runs."""
    client, pipe = pipe_client()
    await client.connect()
    first, second = await _queued_pair(client, pipe)
    pipe.feed(b"\r\n+CSQ: 20,99\r\nOK\r\n")
    first.cancel()
    await asyncio.sleep(0)
    assert pipe.written == b"AT+CSQ\rAT+CREG?\r"
    with pytest.raises(asyncio.CancelledError):
        await first
    pipe.feed(b"\r\n+CREG: 0,1\r\nOK\r\n")
    assert (await second).stat == 1
    assert pipe.written == b"AT+CSQ\rAT+CREG?\r"
    assert not client._needs_resync
    no_leftovers(client)
    await client.close()


async def test_waiter_cancelled_as_the_line_is_handed_to_it_passes_it_on():
    client, pipe = pipe_client()
    await client.connect()
    first, second = await _queued_pair(client, pipe)
    third = asyncio.create_task(client.execute(C.cpin_query()))
    for _ in range(3):
        await asyncio.sleep(0)
    pipe.feed(b"\r\n+CSQ: 20,99\r\nOK\r\n")  # the line is handed to +CREG? ...
    second.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await second
    await asyncio.sleep(0)
    assert pipe.written == b"AT+CSQ\rAT+CPIN?\r"
    pipe.feed(b"\r\n+CPIN: READY\r\nOK\r\n")
    await third
    assert (await first).rssi == 20
    no_leftovers(client)
    await client.close()


async def test_a_prompt_read_inside_the_write_keeps_the_whole_timeout():
    """A transport that answers inside ``write()``: the prompt's PDU restarts
    the deadline at the command's whole timeout, and the deadline set for the
    prompt does not overwrite it."""
    client, pipe = pipe_client()
    await client.connect()
    pdu_hex = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    loop = asyncio.get_running_loop()

    def on_write(data):
        if data.endswith(b"\r"):
            pipe.feed(b"\r\n> ")  # answered inside write()
        elif data.endswith(b"\x1a"):
            loop.call_later(0.3, pipe.feed, b"\r\n+CMGS: 5\r\n\r\nOK\r\n")

    pipe.on_write = on_write
    cmd = dataclasses.replace(C.cmgs(pdu_hex, 24), timeout=1.0, prompt_timeout=0.1)
    assert await client.execute(cmd) == 5
    no_leftovers(client)
    await client.close()
