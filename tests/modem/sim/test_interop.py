"""Third-party clients over the pty: the Gammu CLI and python-gsmmodem-new.

The simulator runs on the test's event loop (PtyEndpoint); the clients run in
a subprocess (gammu) or a worker thread (python-gsmmodem, which is blocking),
each with a timeout.
"""

from __future__ import annotations

import asyncio
import shutil
import threading

import pytest

from modem.sim.endpoints import PtyEndpoint

from .conftest import eventually, fast_timing


@pytest.fixture
async def pty_sim(make_sim, tmp_path):
    sim = make_sim("bg96", timing=fast_timing(cnma_timeout=5.0))
    link = str(tmp_path / "ttySIM0")
    ep = PtyEndpoint(sim, link)
    ep.start()
    yield sim, link
    ep.close()


async def gammu_batch(tmp_path, link: str, commands: list[str], timeout: float = 40) -> str:
    """Run gammu commands in one batch (one connection set-up: gammu's own
    initialisation takes ~2 s however fast the module answers)."""
    rc = tmp_path / "gammurc"
    rc.write_text(f"[gammu]\ndevice = {link}\nconnection = at\n")
    proc = await asyncio.create_subprocess_exec(
        "gammu",
        "-c",
        str(rc),
        "--batch",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(
            proc.communicate(("\n".join(commands) + "\n").encode()), timeout
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


async def test_gammu_identify_getallsms_sendsms(pty_sim, tmp_path):
    # Debian gammu is a declared test dependency (tools/bootstrap.sh installs it)
    assert shutil.which("gammu"), "the gammu command is not installed: run tools/bootstrap.sh"
    sim, link = pty_sim
    sim.deliver("hello gammu")
    sim.deliver("cmd", include_sid="start", sid="DC" + "ab" * 16)
    sim.deliver("part " * 40)  # two parts
    out = await gammu_batch(
        tmp_path,
        link,
        ["identify", "getallsms", 'sendsms TEXT 2936 -text "pong from gammu"'],
    )
    # identify
    assert "Quectel" in out
    assert "866425030000001" in out  # IMEI
    assert "310260000000002" in out  # IMSI
    # getallsms
    assert "hello gammu" in out
    assert "DC" + "ab" * 16 + " cmd" in out
    assert "part 1 of 2" in out and "part 2 of 2" in out
    assert '"2936"' in out
    assert "4 SMS parts" in out
    # sendsms
    assert "message reference=0" in out
    assert len(sim.mo_log) == 1
    rec = sim.mo_log[0]
    assert rec.mr == 0
    assert str(rec.message.tp_da) == "2936"
    assert rec.message.tp_ud.text == "pong from gammu"


def test_python_gsmmodem_available():
    # a declared test dependency: missing is a failure, never a skip
    import gsmmodem.modem

    assert hasattr(gsmmodem.modem, "GsmModem")


async def test_python_gsmmodem_send_and_receive(pty_sim):
    import gsmmodem.modem as gsmmodem

    sim, link = pty_sim
    received: list[tuple[str, str]] = []
    got = threading.Event()

    def on_sms(sms) -> None:
        received.append((sms.number, sms.text))
        got.set()

    modem = gsmmodem.GsmModem(link, 115200, smsReceivedCallbackFunc=on_sms)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, modem.connect), 20)
        sent = await asyncio.wait_for(
            loop.run_in_executor(None, modem.sendSms, "2936", "hello from gsmmodem"), 20
        )
        assert sent.reference == 0
        assert sim.mo_log[0].message.tp_ud.text == "hello from gsmmodem"
        # It asked for a status report (+CNMI ds=2: +CDSI); let it read and
        # delete that first: python-gsmmodem handles one URC per burst.
        # (No timer pending: the report has arrived, not merely not yet.)
        await eventually(
            lambda: (
                not sim._timers and len(sim.storage("ME")) == 0 and not sim.unrouted_status_reports
            )
        )
        sim.deliver("inbound command")  # +CMTI -> AT+CMGR -> callback
        assert await asyncio.wait_for(loop.run_in_executor(None, got.wait, 10), 15)
        assert received == [("2936", "inbound command")]
        # python-gsmmodem deletes the message (AT+CMGD) on its notification
        # thread after the callback returns; closing before that lands would
        # leave the thread to fail later, inside another test.
        await eventually(
            lambda: (
                len(sim.storage("ME")) == 0
                and len(sim.storage("SM")) == 0
                and not any("HandleModemNotification" in t.name for t in threading.enumerate())
            ),
            timeout=10,
        )
    finally:
        await loop.run_in_executor(None, modem.close)


async def test_python_gammu_read_and_send_on_simcom_prompt(make_sim, tmp_path):
    """python-gammu (libgammu 1.45) against the sim7600 profile, whose prompt is
    ``\\r\\n>\\r\\n`` (gammu issue #1176): read the inbox, send a reply."""
    import gammu as gammu_mod

    sim = make_sim("sim7600")
    link = str(tmp_path / "ttySIM0")
    ep = PtyEndpoint(sim, link)
    ep.start()
    sim.deliver("stored before")

    def session() -> tuple[str, list[tuple[str, str]], int]:
        sm = gammu_mod.StateMachine()
        sm.SetConfig(0, {"Device": link, "Connection": "at"})
        sm.Init()
        try:
            maker = sm.GetManufacturer()
            inbox = []
            m = sm.GetNextSMS(Start=True, Folder=0)
            while True:
                inbox.append((m[0]["Number"], m[0]["Text"]))
                try:
                    m = sm.GetNextSMS(Location=m[0]["Location"], Folder=0)
                except gammu_mod.ERR_EMPTY:
                    break
            mr = sm.SendSMS({"Text": "pong", "SMSC": {"Location": 1}, "Number": "2936"})
            return maker, inbox, mr
        finally:
            sm.Terminate()

    try:
        loop = asyncio.get_running_loop()
        maker, inbox, mr = await asyncio.wait_for(loop.run_in_executor(None, session), 40)
    finally:
        ep.close()
    assert maker == "SIMCOM"
    assert inbox == [("2936", "stored before")]
    assert mr == 0
    assert sim.mo_log[0].message.tp_ud.text == "pong"
