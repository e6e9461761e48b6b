"""The SMS service against the simulated module: receive, acknowledge, delete, send."""

from __future__ import annotations

import asyncio

import pytest

from modem.errors import CmsError, CmsErrorCode
from modem.session import SessionConfig
from modem.sms import ReceivedMessage, StatusReportReceived, Undecodable

from .harness import running

PROFILES = ["generic", "bg96", "ec25", "sim7600", "sara-r410m"]


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
        h.service.request_sweep()
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


async def test_storage_full_swept():
    async with running(before=lambda sim: sim.fault("storage-full")) as h:
        h.sim.deliver("arrives when space frees")
        await h.wait_for(lambda: "arrives when space frees" in h.texts(), 10)
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


async def test_garbage_and_drops_do_not_lose_messages():
    async with running(conn={"delivery": "bytewise"}) as h:
        h.sim.fault("garbage", 64)
        h.sim.deliver("after garbage")
        await h.wait_for(lambda: "after garbage" in h.texts(), 10)


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


async def test_storage_full_indication_triggers_sweep():
    async with running() as h:
        sweeps = h.service.stats["sweeps"]
        h.client._on_data(b'\r\n+CIEV: "smsfull",1\r\n')
        await h.wait_for(lambda: h.service.stats["sweeps"] > sweeps)


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
