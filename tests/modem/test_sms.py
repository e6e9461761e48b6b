"""The SMS service against the simulated module: receive, acknowledge, delete, send."""

from __future__ import annotations

import asyncio

import pytest

from modem import commands as C
from modem.errors import CmsError, CmsErrorCode, CommandTimeout, ModemError, ModemRebooted
from modem.session import SessionConfig
from modem.sms import ReceivedMessage, StatusReportReceived, Undecodable

from .harness import running

PROFILES = ["generic", "bg96", "ec25", "sim7600", "sara-r410m", "minimal"]


@pytest.mark.parametrize("profile", PROFILES)
async def test_stored_then_live_then_deleted(profile):
    async with running(profile, before=lambda sim: sim.deliver("stored while down")) as h:
        h.sim.deliver("live one")
        await h.wait_for(lambda: len(h.got) == 2)
        await h.settle()
        assert h.texts() == ["stored while down", "live one"]
        assert not h.deleted_before_ack


async def test_concatenated_reassembled_and_deleted_together():
    async with running() as h:
        text = "".join(chr(65 + i % 26) for i in range(400))
        h.sim.deliver(text)
        await h.wait_for(lambda: len(h.got) == 1)
        await h.settle()
        item = h.got[0]
        assert isinstance(item, ReceivedMessage) and item.text == text
        assert len(item.parts) == 3 and len(item.locations) == 3
        assert not h.deleted_before_ack


async def test_consumer_failure_keeps_message_until_accepted():
    async with running() as h:
        h.fail_next = 1
        h.sim.deliver("important")
        await h.wait_for(lambda: h.service.stats["consumer_errors"] == 1)
        assert len(h.on_sim()) == 1  # still there
        # offered again by itself (a backed-off sweep), not only on the next cue
        await h.wait_for(lambda: len(h.got) == 1)
        await h.settle()
        assert h.texts() == ["important"]


async def test_undecodable_reported_then_deleted():
    async with running() as h:
        h.sim.deliver(pdu="07911326040000F0")  # SMSC only: no TPDU
        await h.wait_for(lambda: len(h.got) == 1)
        await h.settle()
        item = h.got[0]
        assert isinstance(item, Undecodable) and item.raw.startswith("0791")


async def test_duplicates_share_identity():
    async with running() as h:
        h.sim.deliver("twice", duplicate=True)
        await h.wait_for(lambda: len(h.got) == 2)
        assert h.got[0].identity == h.got[1].identity


async def test_binary_and_sid():
    async with running() as h:
        h.sim.deliver(b"\x00\x01\xfe", encoding="8bit")
        h.sim.deliver("reboot now", include_sid="start")
        await h.wait_for(lambda: len(h.got) == 2)
        assert h.got[0].data == b"\x00\x01\xfe"
        assert h.got[1].text.endswith(" reboot now") and h.got[1].text.startswith("DC")


async def test_send_single_and_multipart():
    async with running() as h:
        r = await h.service.send("2936", "ok")
        assert len(r.mrs) == 1
        r2 = await h.service.send("2936", "y" * 200)
        assert len(r2.mrs) == 2 and r2.mrs[0] != r2.mrs[1]
        assert len(h.sim.mo_log) == 3


async def test_send_transient_retried_permanent_raised():
    async with running(service_kwargs={"send_retry": None}) as h:
        h.service.send_retry = type(h.service.send_retry)(attempts=4, initial=0.01)
        h.sim.fault("cms-error", 42, 2)
        r = await h.service.send("2936", "after congestion")
        assert len(r.mrs) == 1 and h.service.stats["send_retries"] == 2
        h.sim.fault("cms-error", 304)
        with pytest.raises(CmsError) as ei:
            await h.service.send("2936", "bad")
        assert ei.value.code is CmsErrorCode.INVALID_PDU_MODE_PARAMETER


async def test_send_waits_for_registration():
    async with running() as h:
        h.sim.fault("unregister")
        await h.wait_for(lambda: not h.session.registered, 2)
        task = asyncio.create_task(h.service.send("2936", "later"))
        await asyncio.sleep(0.05)
        assert not task.done()
        h.sim.fault("register")
        r = await asyncio.wait_for(task, 5)
        assert len(r.mrs) == 1


async def test_status_report_matched():
    async with running() as h:
        r = await h.service.send("+15551234567", "with report", srr=True)
        await h.wait_for(lambda: any(isinstance(i, StatusReportReceived) for i in h.got))
        rep = next(i for i in h.got if isinstance(i, StatusReportReceived))
        assert rep.report.tp_mr == r.mrs[0] and rep.matched


async def _start_up_done(h) -> None:
    """Wait until the start-up sweep is over: a probe is handled after it."""
    await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
    h.sim.deliver("probe")
    await h.wait_for(lambda: "probe" in h.texts())
    await h.settle()


async def test_storage_full_indication_sweeps_and_frees_space():
    # Storage fills while running (no start-up sweep left to rescue it) and the
    # network holds the next SMS: only the module's storage-full indication
    # (+CIEV: "smsfull",1) makes the service sweep, free the slots, and the
    # network deliver it. No periodic sweep.
    async with running(service_kwargs={"periodic_sweep": 0}) as h:
        await _start_up_done(h)
        sweeps = h.service.stats["sweeps"]
        h.sim.fault("storage-full")
        h.sim.deliver("arrives when space frees")
        assert h.sim.pending_mt  # refused: the network keeps it
        h.client._on_data(b'\r\n+CIEV: "smsfull",1\r\n')
        await h.wait_for(lambda: "arrives when space frees" in h.texts(), 10)
        assert h.service.stats["sweeps"] == sweeps + 1
        await h.settle()
        assert not h.deleted_before_ack


async def test_reboot_reinit_and_sweep():
    async with running() as h:
        gen = h.session.generation
        h.sim.fault("reboot")
        h.sim.deliver("during reboot")
        await h.wait_for(lambda: "during reboot" in h.texts(), 10)
        assert h.session.generation > gen


async def test_disconnect_reconnect_nothing_lost():
    async with running() as h:
        h.sim.fault("disconnect", 100)
        h.sim.deliver("while unplugged")
        await h.wait_for(lambda: "while unplugged" in h.texts(), 10)
        assert h.session.stats["reconnects"] >= 1


async def test_direct_delivery_with_cnma():
    cfg = SessionConfig(direct_delivery=True, csms=1)
    async with running(config=cfg) as h:
        h.sim.deliver("direct")
        await h.wait_for(lambda: h.texts() == ["direct"])
        await asyncio.sleep(0.05)
        assert not h.on_sim()


async def test_garbage_and_drops_do_not_lose_messages(fast_timing):
    # garbage on the line, then a line that drops bytes (a lost +CMTI, a lost
    # answer): every message is handed over, none deleted before its ack
    async with running(conn={"delivery": "bytewise"}, service_kwargs={"periodic_sweep": 1.0}) as h:
        h.sim.fault("garbage", 64)
        h.sim.deliver("after garbage")
        await h.wait_for(lambda: "after garbage" in h.texts(), 10)
        timeouts = h.client.stats["timeouts"]
        h.sim.fault("drop", 0.05)
        expected = {f"through drops {i}" for i in range(10)}
        for text in sorted(expected):
            h.sim.deliver(text)
        await h.wait_for(lambda: h.client.stats["timeouts"] > timeouts, 10)  # drops hit
        h.sim.fault("clear")
        await h.wait_for(lambda: expected <= set(h.texts()), 20)
        await h.settle()
        assert not h.deleted_before_ack


async def test_hung_module_escalates_to_power_cycle(fast_timing):
    cycles = []

    async def power_cycle():
        cycles.append(1)
        h.sim.fault("reboot")

    cfg = SessionConfig(power_cycle=power_cycle, reboot_wait=0.3)
    async with running(config=cfg) as h:
        h.sim.fault("hang")
        h.sim.deliver("after the power cycle")
        await h.wait_for(lambda: "after the power cycle" in h.texts(), 20)
        assert cycles and h.session.stats["escalations"] >= 1


async def test_send_not_starved_by_incoming_burst():
    async with running() as h:
        for i in range(20):
            h.sim.deliver(f"burst {i}")
        result = await asyncio.wait_for(h.service.send("2936", "reply amid burst"), 5)
        assert len(result.mrs) == 1
        await h.wait_for(lambda: len(h.got) == 20)
        assert len(h.got) == 20  # the send did not starve receiving either


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_corrupting_line_with_verified_reads(fast_timing, seed):
    async with running(sim_kwargs={"seed": seed}, service_kwargs={"verify_reads": True}) as h:
        h.sim.fault("corrupt", 0.002)
        expected = {f"verified {i}" for i in range(60)}
        for text in sorted(expected):
            h.sim.deliver(text)
            await asyncio.sleep(0.005)

        def texts() -> set[str]:
            return {t for t in h.texts() if t}

        try:
            await h.wait_for(lambda: expected <= texts(), 30)
        except TimeoutError:
            raise AssertionError(
                f"missing {sorted(expected - texts())}; extra {sorted(texts() - expected)}; "
                f"on SIM {len(h.on_sim())}; service {h.service.stats}"
            ) from None
        h.sim.fault("clear")
        # nothing decoded from a corrupted read was handed over
        assert texts() == expected


async def test_slow_module_delay_fault():
    async with running() as h:
        h.sim.fault("delay", 30)
        h.sim.deliver("slow but fine")
        await h.wait_for(lambda: "slow but fine" in h.texts(), 5)
        r = await h.service.send("2936", "slow reply")
        assert len(r.mrs) == 1


async def test_ucs2_concatenated_with_surrogate_pairs():
    text = "héllo 😀 " * 12  # UCS-2, several parts, surrogate pairs near boundaries
    async with running() as h:
        h.sim.deliver(text, encoding="ucs2")
        await h.wait_for(lambda: len(h.got) == 1)
        assert h.got[0].text == text and len(h.got[0].parts) > 1


async def test_configured_service_centre_is_set():
    cfg = SessionConfig(smsc="+15559999999")
    async with running(config=cfg) as h:
        assert h.session.smsc == "+15559999999"
        r = await h.service.send("2936", "via configured SC")
        assert len(r.mrs) == 1


def _after_pdu_written(h, action):
    """Run ``action`` right after the client writes a +CMGS PDU (Ctrl-Z)."""
    orig = h.client._write

    def write(data: bytes) -> None:
        orig(data)
        if data.endswith(b"\x1a"):
            h.client._write = orig
            action()

    h.client._write = write


@pytest.mark.parametrize("fault", ["disconnect", "reboot"])
async def test_send_not_resent_when_port_vanishes_after_pdu(fast_timing, fault):
    # the PDU is out; the answer is lost with the port (or a reboot): outcome
    # unknown, resending would make a second Command at Twilio
    async with running(service_kwargs={"send_retry": None}) as h:
        h.service.send_retry = type(h.service.send_retry)(attempts=4, initial=0.01)
        if fault == "disconnect":
            _after_pdu_written(h, lambda: h.sim.fault("disconnect", 50))
        else:
            _after_pdu_written(h, lambda: h.client.fail_pending(ModemRebooted("RDY")))
        with pytest.raises(ModemError):
            await h.service.send("2936", "once only")
        await asyncio.sleep(0.3)
        assert len(h.sim.mo_log) <= 1
        assert h.service.stats["send_retries"] == 0


async def test_send_retried_when_module_reboots_before_prompt(fast_timing):
    # nothing was sent yet: a retry after the re-init is safe
    async with running(service_kwargs={"send_retry": None}) as h:
        h.service.send_retry = type(h.service.send_retry)(attempts=4, initial=0.01)
        orig = h.client._write

        def write(data: bytes) -> None:
            if data.startswith(b"AT+CMGS"):
                h.client._write = orig
                orig(data)
                h.client.fail_pending(ModemRebooted("RDY"))
                return
            orig(data)

        h.client._write = write
        r = await h.service.send("2936", "after reboot")
        assert len(r.mrs) == 1 and len(h.sim.mo_log) == 1


@pytest.mark.parametrize("code", [332, 500])
async def test_send_outcome_unknown_cms_after_pdu_not_resent(code):
    # +CMS ERROR: 332 (network timeout) after the PDU: the SC may have it; a resend
    # could be a second Command. 42 (congestion, an RP cause) is still retried above.
    async with running(service_kwargs={"send_retry": None}) as h:
        h.service.send_retry = type(h.service.send_retry)(attempts=4, initial=0.01)
        h.sim.fault("cms-error", code)
        with pytest.raises(CmsError) as ei:
            await h.service.send("2936", "maybe delivered")
        assert ei.value.code == code and ei.value.data_sent
        assert h.service.stats["send_retries"] == 0


async def test_delete_not_repeated_after_reboot_mid_cmgd(fast_timing):
    # The module executed +CMGD and restarted before answering; at boot the network
    # delivers a new SMS into the freed index. Repeating the +CMGD would delete it unread.
    async with running() as h:
        orig = h.client._write
        freed: list[int] = []

        def write(data: bytes) -> None:
            orig(data)
            if data.startswith(b"AT+CMGD=") and not freed:
                freed.append(int(data[8:].strip()))
                h.client.fail_pending(ModemRebooted("RDY"))
                asyncio.get_running_loop().call_later(0.005, lambda: h.sim.deliver("new one"))

        h.client._write = write
        h.sim.deliver("first")
        await h.wait_for(lambda: "new one" in h.texts(), 3)
        assert "first" in h.texts() and not h.deleted_before_ack
        await h.settle()


async def test_permanently_damaged_listing_does_not_spin():
    # a record the module always lists damaged: re-sweeps back off instead of
    # running +CMGL back to back forever (no busy polling)
    from modem import commands as C

    async with running() as h:
        real = h.client.execute

        async def execute(cmd):
            value = await real(cmd)
            if isinstance(value, C.Listing):
                value = C.Listing(value.entries, ("+CMGL: 9,1,,99 (damaged)",))
            return value

        h.client.execute = execute
        h.sim.deliver("still handled")
        await h.wait_for(lambda: "still handled" in h.texts(), 3)
        before = h.service.stats["sweeps"]
        h.service.request_sweep()
        await asyncio.sleep(0.4)
        assert h.service.stats["sweeps"] - before <= 3


async def test_concat_ref_collision_part_not_deleted_unread():
    # Two long messages from one sender with the same 8-bit concatenation reference
    # (it wraps): a part with a sequence number already held but a different body
    # is not a duplicate; it must not be deleted along with the other message.
    from datetime import UTC, datetime

    from modem.sim import codec

    t = datetime.now(UTC).replace(microsecond=0)  # held parts age from their TP-SCTS
    a = codec.build_delivers("2936", "A" * 200, scts=t, encoding=None, ref=7, smsc=None)
    b = codec.build_delivers("2936", "B" * 200, scts=t, encoding=None, ref=7, smsc=None)
    assert len(a) == len(b) == 2
    async with running() as h:
        h.sim.deliver(pdu=a[0].hex())
        await asyncio.sleep(0.1)
        h.sim.deliver(pdu=b[0].hex())
        await asyncio.sleep(0.1)
        h.sim.deliver(pdu=a[1].hex())
        await h.wait_for(lambda: "A" * 200 in h.texts(), 3)
        await asyncio.sleep(0.1)
        assert b[0].hex().upper() in [p.upper() for p in h.on_sim()]
        assert not h.deleted_before_ack


async def test_send_retried_after_prompt_timeout_not_after_pdu(fast_timing, monkeypatch):
    import dataclasses

    from modem import commands as C

    real_cmgs = C.cmgs
    monkeypatch.setattr(
        C, "cmgs", lambda *a: dataclasses.replace(real_cmgs(*a), prompt_timeout=0.2, timeout=0.3)
    )
    async with running(service_kwargs={"send_retry": None}) as h:
        h.service.send_retry = type(h.service.send_retry)(attempts=4, initial=0.01)
        orig = h.client._write
        swallowed: list[bytes] = []

        def write(data: bytes) -> None:
            if data.startswith(b"AT+CMGS") and not swallowed:
                swallowed.append(data)  # lost on the line: no prompt will come
                return
            orig(data)

        h.client._write = write
        r = await h.service.send("2936", "after a lost command line")
        assert len(r.mrs) == 1 and len(h.sim.mo_log) == 1 and swallowed
        # the PDU went out, then the answer was lost: never resent
        h.client._write = orig
        _after_pdu_written(h, lambda: h.sim.fault("drop", 1.0))
        with pytest.raises(CommandTimeout) as ei:
            await h.service.send("2936", "answer lost")
        assert ei.value.data_sent
        h.sim.fault("clear")
        await asyncio.sleep(0.1)
        assert len(h.sim.mo_log) <= 2


async def test_listing_with_damaged_index_never_deletes_another_message(monkeypatch):
    # noise changed the index digit in a +CMGL header: the PDU of "one" appears
    # under the index of "two". Deleting that index after "one" is accepted would
    # lose "two" unread; the sweep reads the index back first.
    import dataclasses

    from modem import commands as C

    real = C.cmgl_lenient
    tampered: list[bool] = []

    def tamper(response):
        listing = C.parse_cmgl_lenient(response)
        entries = sorted(listing.entries, key=lambda e: e.index)
        if tampered or len(entries) < 2:
            return listing
        tampered.append(True)
        one, two = entries[0], entries[1]
        return C.Listing((dataclasses.replace(one, index=two.index),), ())

    monkeypatch.setattr(C, "cmgl_lenient", lambda *a: dataclasses.replace(real(*a), parser=tamper))

    def before(sim):
        sim.deliver("one")
        sim.deliver("two")

    async with running(before=before) as h:
        await h.wait_for(lambda: {"one", "two"} <= set(h.texts()), 3)
        assert tampered and not h.deleted_before_ack


async def test_periodic_sweep_is_not_starved_by_steady_traffic():
    # The safety sweep is due PERIODIC seconds after the last sweep, however
    # many +CMTI cues come in between: a message stored without a notice (a
    # lost +CMTI) is found while traffic never pauses. Virtual clock.
    now = [0.0]
    async with running(service_kwargs={"periodic_sweep": 100.0, "clock": lambda: now[0]}) as h:
        await _start_up_done(h)  # the start-up sweep cannot find what follows
        # a message stored with no +CMTI (routing off for a moment)
        await h.client.execute(C.raw("AT+CNMI=2,0,0,0,0"))
        h.sim.deliver("stored silently")
        await h.client.execute(C.raw("AT+CNMI=2,1,0,1,0"))
        sweeps = h.service.stats["sweeps"]

        def texts() -> set[str | None]:
            return {getattr(x, "text", None) for x in h.got}

        for i in range(6):  # steady traffic: a cue every 30 virtual seconds
            now[0] += 30.0
            h.sim.deliver(f"steady {i}")
            await h.wait_for(lambda i=i: f"steady {i}" in texts(), 5)
            if now[0] < 100.0:  # not due yet: only the periodic sweep can find it
                assert "stored silently" not in texts()
        await h.wait_for(lambda: "stored silently" in texts(), 5)
        assert h.service.stats["sweeps"] > sweeps


async def test_each_stored_pdu_is_decoded_once(monkeypatch):
    """The check that a stored PDU decodes (before its delete) and its
    classification share one decode; a PDU that does not decode is still
    reported with the codec's message."""
    import pdu

    real = pdu.decode
    decoded: list[str] = []

    def counting(raw, *, smsc=True):
        if isinstance(raw, str):  # the service decodes the hex line (the simulator bytes)
            decoded.append(raw)
        return real(raw, smsc=smsc)

    monkeypatch.setattr(pdu, "decode", counting)
    async with running("bg96", service_kwargs={"read_ahead": True}) as h:
        assert h.wire is not None
        # the start-up sweep is over: each message comes by +CMTI and +CMGR
        await h.wait_for(lambda: h.wire.count(b"AT+CMGL=") >= 1 and not h.client._lock.locked())
        await asyncio.sleep(0.05)
        h.sim.deliver("one")
        await h.wait_for(lambda: len(h.got) == 1)
        h.sim.deliver(pdu="07911326040000F0")  # SMSC only: no TPDU
        await h.wait_for(lambda: len(h.got) == 2)
        await h.settle()
        assert h.wire.count(b"AT+CMGR=") >= 2, "not read by +CMGR"
        assert sorted(type(g).__name__ for g in h.got) == ["ReceivedMessage", "Undecodable"]
        bad = next(g for g in h.got if isinstance(g, Undecodable))
        assert bad.error and "07911326040000F0" in decoded
        received = [r for r in decoded if r.upper() != "07911326040000F0"]
        assert len(received) == 1, decoded
