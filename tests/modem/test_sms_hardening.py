"""SMS service hardening (issue 7): classification, acknowledgements, bounds, identities.

Each test reproduces one defect against the simulated module and checks what
reached the wire, what the consumer got and what stayed on the SIM.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest

import pdu
from modem import commands as C
from modem import timing
from modem.client import AtClient
from modem.errors import CmsError, CommandFailed
from modem.session import Session, SessionConfig
from modem.sim import SimModem, SimTiming, codec, create_sim_connection
from modem.sms import (
    Inbound,
    PartialSendError,
    ReceivedMessage,
    SmsService,
    StatusReportReceived,
    Undecodable,
    part_identity,
)

from .harness import Harness, running

DIRECT = SessionConfig(direct_delivery=True, csms=1)


def record_writes(h: Harness) -> list[bytes]:
    """Every command line and PDU the client writes, in order."""
    out: list[bytes] = []
    orig = h.client._write

    def write(data: bytes) -> None:
        out.append(data)
        orig(data)

    h.client._write = write
    return out


def swallow_writes(h: Harness, prefix: bytes, count: int) -> list[bytes]:
    """Lose the next ``count`` command lines starting with ``prefix`` on the line."""
    lost: list[bytes] = []
    orig = h.client._write

    def write(data: bytes) -> None:
        if data.startswith(prefix) and len(lost) < count:
            lost.append(data)
            return
        orig(data)

    h.client._write = write
    return lost


def texts(h: Harness) -> list[str | None]:
    return [i.text for i in h.got if isinstance(i, ReceivedMessage)]


async def start_up_done(h: Harness) -> None:
    """Wait until the start-up sweep is over (a probe message is handled after it)."""
    await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
    h.sim.deliver("probe")
    await h.wait_for(lambda: "probe" in texts(h))
    await h.settle()


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# -- defect 2: one classification; a damaged direct delivery is not acknowledged ------


@pytest.mark.parametrize("mode", ["drop-octet", "truncate", "nonhex"])
async def test_damaged_direct_delivery_negatively_acked_and_delivered_again(mode):
    async with running(config=DIRECT) as h:
        writes = record_writes(h)
        h.sim.fault("damage-next-pdu", mode)
        h.sim.deliver("direct, damaged once")
        await h.wait_for(lambda: "direct, damaged once" in texts(h))
        # the damaged copy never reached the consumer, the intact redelivery did
        assert not [i for i in h.got if isinstance(i, Undecodable)]
        assert texts(h) == ["direct, damaged once"]
        # TS 27.005 §3.4.4: RP-ERROR for the damaged one, RP-ACK for the good one
        await h.wait_for(lambda: len(h.sim.mt_acks) == 2)
        acks = [w for w in writes if w.startswith(b"AT+CNMA") and w != b"AT+CNMA=?\r"]
        assert acks == [b"AT+CNMA=2\r", b"AT+CNMA\r"]
        assert [a.result for a in h.sim.mt_acks] == ["nack", "ack"]  # what the network saw


async def test_damaged_direct_delivery_left_unacknowledged_without_negative_ack(quick_acks):
    # a module whose +CNMA=? does not offer <n> 2: nothing is acknowledged, the
    # module's RP timer runs out, the network delivers again and routing is restored
    sim_timing = SimTiming(cnma_timeout=0.3)
    async with running(config=DIRECT, sim_kwargs={"timing": sim_timing}) as h:
        writes = record_writes(h)
        real = h.client.execute

        async def execute(cmd):
            if cmd.text == "AT+CNMA=?":
                raise CommandFailed("ERROR", cmd.text)
            return await real(cmd)

        h.client.execute = execute
        h.sim.fault("damage-next-pdu", "drop-octet")
        h.sim.deliver("direct, damaged once")
        await h.wait_for(lambda: "direct, damaged once" in texts(h), 5)
        assert not [i for i in h.got if isinstance(i, Undecodable)]
        assert not [w for w in writes if w.startswith(b"AT+CNMA")]
        # RP-ERROR by the module's timer; the network's second try came while the
        # routing was reset (stored, found by the sweep after the restore)
        assert h.sim.mt_acks[0].result == "timeout"
        await h.wait_for(lambda: h.sim.cnmi[1] == 2, 5)


async def test_direct_part_handed_over_alone_then_whole():
    # a direct part is not on the SIM: the consumer gets it before the ack
    # (incomplete), and the whole message when its last part comes
    text = "".join(chr(65 + i % 26) for i in range(300))
    async with running(config=DIRECT) as h:
        h.sim.deliver(text)
        await h.wait_for(lambda: any(getattr(i, "complete", False) for i in h.got))
        whole = [i for i in h.got if isinstance(i, ReceivedMessage) and i.complete]
        alone = [i for i in h.got if isinstance(i, ReceivedMessage) and not i.complete]
        assert [w.text for w in whole] == [text]
        assert len(alone) == 1 and alone[0].part_ids[0] in whole[0].part_ids


# -- defect 3: routing after an ack failure; acks not behind a long +CMGS -------------


@pytest.fixture
def quick_acks(monkeypatch):
    monkeypatch.setattr(timing, "CNMA_DEADLINE", 0.3)
    monkeypatch.setattr(timing, "CNMA_MARGIN", 0.05)
    monkeypatch.setattr(timing, "ROUTING_RECHECK_AFTER", 0.6)
    monkeypatch.setattr(timing, "RETRY_INITIAL", 0.02)


async def test_lost_cnma_routing_restored(quick_acks):
    # TS 27.005 §3.4.1: the module resets <mt>/<ds> to 0 when the ack is missing;
    # the service reads +CNMI? and sets the routing again
    sim_timing = SimTiming(cnma_timeout=0.4)
    cfg = DIRECT
    async with running(
        config=cfg, sim_kwargs={"timing": sim_timing}, service_kwargs={"periodic_sweep": 0}
    ) as h:
        lost = swallow_writes(h, b"AT+CNMA", 1)
        h.sim.deliver("first")
        await h.wait_for(lambda: h.sim.cnmi[1] == 0, 5)  # the module gave up on the ack
        await h.wait_for(lambda: h.sim.cnmi[1] == 2, 5)  # routing set again
        assert lost and h.service.stats["ack_failures"] == 1
        h.sim.deliver("second")
        await h.wait_for(lambda: "second" in texts(h), 5)
        assert "first" in texts(h)  # the network delivered it again


async def test_acks_keep_failing_fall_back_to_stored_delivery(quick_acks):
    sim_timing = SimTiming(cnma_timeout=0.4)
    async with running(config=DIRECT, sim_kwargs={"timing": sim_timing}) as h:
        writes = record_writes(h)
        lost = swallow_writes(h, b"AT+CNMA", 1000)

        def restores() -> int:
            return sum(w.startswith(b"AT+CNMI=2,2") for w in writes)

        n = timing.ACK_FAILURES_BEFORE_STORED
        for i in range(n):
            h.sim.deliver(f"direct {i}")
            await h.wait_for(lambda i=i: len(lost) > i, 5)
            if i < n - 1:  # the module reset the routing and the service set it again
                # (the write is recorded as it leaves; the module takes it a moment later)
                await h.wait_for(lambda i=i: restores() > i and h.sim.cnmi[1] == 2, 5)
        await h.wait_for(lambda: h.sim.cnmi[1] == 1, 5)  # stored delivery (+CMTI)
        h.sim.deliver("stored now")
        await h.wait_for(lambda: "stored now" in texts(h), 5)
        await h.settle()
        assert {f"direct {i}" for i in range(n)} <= set(texts(h))
        assert h.session.config.direct_delivery is False


async def test_no_send_starts_while_direct_delivery_awaits_ack():
    release = asyncio.Event()
    async with running(config=DIRECT) as h:
        writes = record_writes(h)
        orig = h.service.consumer

        entered = asyncio.Event()

        async def slow(item: Inbound) -> None:
            entered.set()
            await release.wait()
            await orig(item)

        h.service.consumer = slow
        h.sim.deliver("needs its ack")
        await entered.wait()
        send = asyncio.create_task(h.service.send("2936", "reply"))
        await asyncio.sleep(0.1)
        release.set()
        await asyncio.wait_for(send, 5)
        lines = [w for w in writes if w.startswith((b"AT+CNMA", b"AT+CMGS"))]
        assert lines[0] == b"AT+CNMA\r" and lines[1].startswith(b"AT+CMGS=")


async def test_late_ack_not_sent_and_routing_checked(quick_acks):
    # a +CMGS holds the line past the ack deadline: no +CNMA goes out late
    # (it could acknowledge nothing or the wrong message); routing is checked
    sim_timing = SimTiming(cnma_timeout=0.4)
    async with running(config=DIRECT, sim_kwargs={"timing": sim_timing}) as h:
        await start_up_done(h)
        writes = record_writes(h)
        hold = asyncio.Event()
        holding = asyncio.Event()

        async def long_send() -> None:
            async with h.client._lock:  # what a 120 s +CMGS does to the line
                holding.set()
                await hold.wait()

        hog = asyncio.create_task(long_send())
        await holding.wait()
        h.sim.deliver("acked too late")
        await h.wait_for(lambda: "acked too late" in texts(h))
        await h.wait_for(lambda: h.sim.cnmi[1] == 0, 5)  # the module gave up on the ack
        hold.set()
        await hog
        await h.wait_for(lambda: h.sim.cnmi[1] == 2, 5)  # routing checked and set again
        assert not [w for w in writes if w.startswith(b"AT+CNMA")]


# -- defect 4: held parts bounded under storage pressure ------------------------------


def first_parts(n: int, *, scts: datetime, sender: str = "+15557770000") -> list[str]:
    out = []
    for ref in range(n):
        parts = codec.build_delivers(
            sender, f"{ref:03d}" + "x" * 200, scts=scts, encoding=None, ref=ref, smsc=None
        )
        out.append(parts[0].hex())
    return out


async def test_orphan_parts_do_not_block_reception():
    # 30 first parts whose second parts never come fill the SIM (anyone can send
    # them): the oldest are handed over as incomplete and their slots freed
    async with running(service_kwargs={"periodic_sweep": 0}) as h:
        capacity = h.sim.storage("SM").capacity
        for hexpdu in first_parts(capacity, scts=now_utc()):
            h.sim.deliver(pdu=hexpdu)
        h.sim.deliver("after the flood")
        await h.wait_for(lambda: "after the flood" in texts(h), 10)
        incomplete = [i for i in h.got if isinstance(i, ReceivedMessage) and not i.complete]
        assert incomplete and all(len(i.parts) == 1 for i in incomplete)
        assert not h.deleted_before_ack


# -- defect 10: age from TP-SCTS, not from process memory ----------------------------


async def test_old_part_found_at_start_up_handed_over_incomplete():
    # a part that has waited 2 h on the SIM (the process restarted meanwhile)
    old = now_utc() - timedelta(hours=2)
    (part,) = first_parts(1, scts=old)
    async with running(before=lambda sim: sim.deliver(pdu=part)) as h:
        await h.wait_for(lambda: len(h.got) == 1, 5)
        item = h.got[0]
        assert isinstance(item, ReceivedMessage) and not item.complete
        await h.settle()


async def test_recent_part_is_held():
    (part,) = first_parts(1, scts=now_utc())
    async with running(before=lambda sim: sim.deliver(pdu=part)) as h:
        await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
        h.sim.deliver("probe")
        await h.wait_for(lambda: "probe" in texts(h))
        await h.wait_for(lambda: len(h.on_sim()) == 1)
        assert h.on_sim() == [part.upper()]
        assert texts(h) == ["probe"]


# -- defect 5: reads and deletes wait for the session; generations ----------------------


async def test_delete_waits_for_reinit(fast_timing):
    async with running() as h:
        writes: list[tuple[bytes, bool]] = []
        orig = h.client._write

        def write(data: bytes) -> None:
            writes.append((data, h.session.ready.is_set()))
            orig(data)

        h.client._write = write
        base = h.service.consumer

        async def rebooting(item: Inbound) -> None:
            await base(item)
            h.sim.fault("reboot")
            while h.session.ready.is_set():
                await asyncio.sleep(0.005)

        h.service.consumer = rebooting
        h.sim.deliver("accepted during a reboot")
        await h.wait_for(lambda: h.service.stats["deleted"] >= 1, 10)
        sms = [(w, ready) for w, ready in writes if w.startswith((b"AT+CMGD", b"AT+CMGR"))]
        assert sms and all(ready for _, ready in sms), sms
        await h.settle()


async def test_index_reused_after_reinit_not_deleted_blindly(fast_timing):
    async with running() as h:
        base = h.service.consumer
        done: list[bool] = []

        async def consumer(item: Inbound) -> None:
            await base(item)
            if done:
                return
            done.append(True)
            (loc,) = item.locations
            gen = h.session.generation
            h.sim.fault("reboot")
            while not (h.session.generation > gen and h.session.ready.is_set()):
                await asyncio.sleep(0.005)
            # after the re-init the slot is freed and a new SMS lands in it
            h.sim.storage(loc.mem).delete(loc.index)
            assert h.sim.deliver("new one") == [loc.index]

        h.service.consumer = consumer
        h.sim.deliver("first")
        await h.wait_for(lambda: "new one" in texts(h), 10)
        assert texts(h)[:1] == ["first"]
        await h.settle()


# -- defect 6 and 7: the receive loop ends only by its own cancellation -----------------


async def test_consumer_raising_cancelled_error_is_a_consumer_error(fast_timing):
    async with running() as h:
        base = h.service.consumer
        raised: list[bool] = []

        async def consumer(item: Inbound) -> None:
            if not raised:
                raised.append(True)
                raise asyncio.CancelledError  # e.g. a journal's own timeout leaking out
            await base(item)

        h.service.consumer = consumer
        h.sim.deliver("offered again")
        await h.wait_for(lambda: "offered again" in texts(h), 5)
        assert raised and h.service.stats["consumer_errors"] == 1
        await h.settle()
        h.sim.deliver("loop still alive")
        await h.wait_for(lambda: "loop still alive" in texts(h), 5)


async def test_run_ends_when_client_closed():
    sim = SimModem("generic")

    async def connector(factory):
        return await create_sim_connection(factory, sim)

    client = AtClient(connector)
    session = Session(client)

    async def consumer(item: Inbound) -> None:
        return None

    service = SmsService(session, consumer)
    await client.connect()
    session_task = asyncio.create_task(session.run())
    service_task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(session.ready.wait(), 5)
        await client.close()
        await asyncio.wait_for(service_task, 5)
        assert service_task.exception() is None
    finally:
        for task in (session_task, service_task):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(session_task, service_task, return_exceptions=True)
        session.close()
        sim.close()


# -- defect 8: status reports match TP-MR and TP-RA of a recent send -------------------


async def test_status_report_matches_recipient_and_expires():
    now = [0.0]
    async with running(service_kwargs={"clock": lambda: now[0]}) as h:
        r = await h.service.send("+15551234567", "with report", srr=True)
        await h.wait_for(lambda: any(isinstance(i, StatusReportReceived) for i in h.got))
        assert [i.matched for i in h.got if isinstance(i, StatusReportReceived)] == [True]
        mr = r.mrs[0]
        other = pdu.submit_parts("+15550009999", "x")[0]
        h.sim.deliver(pdu=codec.build_status_report(other, mr, now_utc(), smsc=None).hex())
        ours = pdu.submit_parts("+15551234567", "x")[0]
        now[0] += timing.STATUS_REPORT_WINDOW + 1
        h.sim.deliver(pdu=codec.build_status_report(ours, mr, now_utc(), smsc=None).hex())
        await h.wait_for(lambda: sum(isinstance(i, StatusReportReceived) for i in h.got) == 3)
        reports = [i for i in h.got if isinstance(i, StatusReportReceived)]
        assert [x.report.tp_mr for x in reports] == [mr, mr, mr]
        assert [x.matched for x in reports] == [True, False, False]


async def test_status_report_with_the_tpdu_alone_is_read_not_damaged():
    # TS 27.005 §3.1 puts the SMSC field first, but some modules' +CDS carry
    # the TPDU alone: its hex is exactly <length> octets
    async with running() as h:
        r = await h.service.send("+15551234567", "with report", srr=True)
        await h.wait_for(lambda: any(isinstance(i, StatusReportReceived) for i in h.got))
        h.got.clear()
        ours = pdu.submit_parts("+15551234567", "x")[0]
        with_field = codec.build_status_report(ours, r.mrs[0], now_utc(), smsc=None).hex()
        assert with_field.startswith("00")
        bare = with_field[2:].upper()
        h.sim.fault("urc", f"+CDS: {len(bare) // 2}", bare)
        await h.wait_for(lambda: any(isinstance(i, StatusReportReceived) for i in h.got), 5)
        (rep,) = [i for i in h.got if isinstance(i, StatusReportReceived)]
        assert rep.report.tp_mr == r.mrs[0] and rep.matched
        assert not [i for i in h.got if isinstance(i, Undecodable)]
        assert h.service.stats["direct_damaged"] == 0


# -- defect 9: never a mixture of two messages -----------------------------------------


async def test_parts_of_two_messages_with_same_reference_never_joined():
    # part 2 of message A was lost; much later B reuses the reference: B's part 2
    # must not complete A
    t_a = now_utc() - timedelta(minutes=30)
    t_b = now_utc()
    a = codec.build_delivers("2936", "A" * 200, scts=t_a, encoding=None, ref=9, smsc=None)
    b = codec.build_delivers("2936", "B" * 200, scts=t_b, encoding=None, ref=9, smsc=None)
    async with running() as h:
        h.sim.deliver(pdu=a[0].hex())
        h.sim.deliver(pdu=b[1].hex())
        h.sim.deliver(pdu=b[0].hex())
        await h.wait_for(lambda: "B" * 200 in texts(h), 5)
        assert texts(h) == ["B" * 200]
        assert a[0].hex().upper() in h.on_sim()  # A's part still held, not mixed in


# -- defect 11: the known hook ------------------------------------------------------------


async def test_parts_the_application_has_are_deleted_not_held():
    journal: set[str] = set()

    async def known(part_id: str) -> bool:
        return part_id in journal

    text = "".join(chr(97 + i % 26) for i in range(400))
    async with running(service_kwargs={"known": known}) as h:
        h.sim.deliver(text)
        await h.wait_for(lambda: text in texts(h), 5)
        await h.settle()
        (msg,) = h.got
        assert isinstance(msg, ReceivedMessage) and len(msg.part_ids) == 3
        assert msg.part_ids == tuple(part_identity(p) for p in msg.parts)
        journal.update(msg.part_ids)
        # a kill between per-part deletes left parts 2 and 3 on the SIM
        for part in msg.parts[1:]:
            h.sim.deliver(pdu=pdu.encode(part).hex())
        await h.wait_for(lambda: h.service.stats["known_parts"] == 2, 5)
        await h.settle()
        assert len(h.got) == 1


# -- defect 12: damaged stored records reported once, then deleted -----------------------


@pytest.mark.parametrize("kind", ["short", "long", "over255", "empty", "random-text"])
async def test_damaged_record_reported_and_deleted(fast_timing, kind):
    (good,) = codec.build_delivers(
        "2936", "intact", scts=now_utc(), encoding=None, ref=0, smsc="+1555"
    )
    record, length, raw = {
        # framing that disagrees with <length>: the line lost / gained octets
        "short": (good[:-1], len(good) - 4, good[:-1].hex().upper()),
        "long": (good, len(good) - 4 - 3, good.hex().upper()),
        "over255": (good, 300, good.hex().upper()),
        "empty": (b"", 25, ""),
        "random-text": ("garbage, not a PDU at all", 20, "garbage, not a PDU at all"),
    }[kind]

    def before(sim: SimModem) -> None:
        sim.store_raw(record, length=length)

    async with running(before=before) as h:
        await h.wait_for(lambda: len(h.got) == 1, 10)
        await h.settle()
        (item,) = h.got
        assert isinstance(item, Undecodable) and item.raw == raw and item.error
        assert not h.deleted_before_ack
        sweeps = h.service.stats["sweeps"]
        h.sim.deliver("next")
        await h.wait_for(lambda: "next" in texts(h), 5)
        assert h.service.stats["sweeps"] == sweeps  # reported once: no more re-sweeps
        assert [i for i in h.got if isinstance(i, Undecodable)] == [item]


# -- defect 13: phantom direct deliveries ---------------------------------------------------


async def test_direct_delivery_not_configured_is_ignored():
    (good,) = codec.build_delivers(
        "2936", "phantom", scts=now_utc(), encoding=None, ref=0, smsc="+1555"
    )
    async with running(service_kwargs={"periodic_sweep": 0}) as h:
        await start_up_done(h)
        got = len(h.got)
        sweeps = h.service.stats["sweeps"]
        h.sim.fault("urc", "+CMT: ,24", "not a pdu at all")
        h.sim.fault("urc", f"+CMT: ,{len(good) - 4}", good.hex().upper())
        await h.wait_for(lambda: h.service.stats["sweeps"] > sweeps)
        await h.settle()
        assert len(h.got) == got
        assert h.service.stats["direct_ignored"] == 2


async def test_non_hex_direct_pdu_line_is_not_a_message():
    async with running(config=DIRECT) as h:
        writes = record_writes(h)
        h.sim.fault("urc", "+CMT: ,24", "GARBLED LINE 0x1F")
        h.sim.deliver("real one")
        await h.wait_for(lambda: "real one" in texts(h), 5)
        assert not [i for i in h.got if isinstance(i, Undecodable)]
        assert h.service.stats["direct_damaged"] == 1
        assert not [w for w in writes if w == b"AT+CNMA\r"][1:]  # only the real one acked


# -- defect 16: concatenation references of sends ---------------------------------------------


def sent_refs(sim: SimModem) -> list[int]:
    refs = []
    for rec in sim.mo_log:
        msg = rec.message
        concat = msg.tp_ud.concat
        if concat is not None and concat.seq == 1:
            refs.append(concat.ref)
    return refs


async def test_concatenation_reference_from_ref_source():
    async with running(service_kwargs={"ref_source": lambda: 300}) as h:
        await h.service.send("2936", "z" * 200)
        await h.service.send("2936", "single part takes no reference")
        assert sent_refs(h.sim) == [300 % 256]


def test_concatenation_reference_starts_at_random_per_service():
    class _Session:
        def __init__(self) -> None:
            self.client = type("Client", (), {"subscribe": lambda *a: None, "on_discard": []})()
            self.on_ready: list = []

    firsts = set()
    for _ in range(8):
        service = SmsService(_Session(), None)  # type: ignore[arg-type]
        firsts.add(service._next_ref())
    assert len(firsts) > 1  # a fixed start would give one value (8 equal: 256**-7)


# -- +CMTI for an index a sweep already handled ---------------------------------------------


async def test_cmti_older_than_the_sweep_that_handled_it_is_dropped():
    release = asyncio.Event()
    async with running(service_kwargs={"periodic_sweep": 0}) as h:
        await start_up_done(h)
        writes = record_writes(h)
        base = h.service.consumer
        blocked: list[bool] = []

        async def consumer(item: Inbound) -> None:
            if not blocked:
                blocked.append(True)
                await release.wait()
            await base(item)

        h.service.consumer = consumer
        h.sim.deliver("blocks the loop")
        await h.wait_for(lambda: bool(blocked))
        (index,) = h.sim.deliver("cue queued behind")
        h.service.request_sweep()  # the sweep runs before the queued cue
        release.set()
        await h.wait_for(lambda: "cue queued behind" in texts(h), 5)
        await h.settle()
        # cues are handled in order: once the marker is in, the stale cue was handled.
        # A draft (left alone by the service) takes the lower slot: the marker
        # lands at the index of the stale cue
        for _ in range(h.sim.storage("SM").base, index):
            h.sim.storage("SM").add(
                C.MessageStat.STO_UNSENT, bytes.fromhex("0001000100"), 4, "submit"
            )
        assert h.sim.deliver("marker") == [index]
        await h.wait_for(lambda: "marker" in texts(h), 5)
        reads = [w for w in writes if w == f"AT+CMGR={index}\r".encode()]
        assert len(reads) == 2  # the sweep's read-back and the marker's; none for the stale cue
        assert texts(h).count("cue queued behind") == 1


# -- multi-part send failing on part k ---------------------------------------------------------


async def test_multipart_send_failing_on_part_two_reports_sent_mrs():
    async with running(service_kwargs={"send_retry": C.RetryPolicy(attempts=1)}) as h:
        real = h.client.execute
        sent: list[int] = []

        async def execute(cmd):
            value = await real(cmd)
            if cmd.text.startswith("AT+CMGS") and not sent:
                sent.append(value)
                h.sim.fault("cms-error", 304)  # permanent: the next part is refused
            return value

        h.client.execute = execute
        with pytest.raises(PartialSendError) as ei:
            await h.service.send("2936", "p" * 400)
        err = ei.value
        assert err.sent_mrs == tuple(sent) and err.failed_part == 2 and err.parts == 3
        assert isinstance(err.cause, CmsError) and err.cause.code == 304
        assert len(h.sim.mo_log) == 1


# -- timing read when used ---------------------------------------------------------------------


def test_sms_timing_defaults_read_when_used(monkeypatch):
    class _Session:
        def __init__(self) -> None:
            self.client = type("Client", (), {"subscribe": lambda *a: None, "on_discard": []})()
            self.on_ready: list = []

    service = SmsService(_Session(), None)  # type: ignore[arg-type]
    monkeypatch.setattr(timing, "RETRY_INITIAL", 0.123)
    monkeypatch.setattr(timing, "PROMPT_TIMEOUT", 1.5)
    monkeypatch.setattr(timing, "HOLD_MAX_AGE", 42.0)
    monkeypatch.setattr(timing, "PERIODIC_SWEEP", 7.0)
    assert C.cmgr(1).retry.initial == 0.123
    assert C.cmgd(1).retry.initial == 0.123
    assert C.cmgl_lenient().retry.initial == 0.123
    assert C.cmgs("00", 1).prompt_timeout == 1.5
    assert service.reassembly_max_age == 42.0
    assert service.periodic_sweep == 7.0
    assert service.send_retry.initial == 2 * 0.123


# -- defect 10 with the module's clock ------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "released"), [(timedelta(hours=2), True), (timedelta(minutes=5), False)]
)
async def test_hold_age_counted_on_the_module_clock(age, released):
    # the module (and the network) live in 2031; the host clock says otherwise.
    # Ageing by the host clock would hold the 2 h old part for 5 years.
    module_now = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)

    def before(sim: SimModem) -> None:
        sim.set_clock(fixed=module_now)
        (part,) = first_parts(1, scts=module_now - age)
        sim.deliver(pdu=part)

    async with running(before=before) as h:
        h.sim.deliver("probe", scts=module_now)
        await h.wait_for(lambda: "probe" in texts(h), 5)
        if released:
            await h.wait_for(lambda: len(h.got) == 2, 5)
            (item,) = [i for i in h.got if isinstance(i, ReceivedMessage) and not i.complete]
            assert len(item.parts) == 1
            await h.settle()
        else:
            await h.wait_for(lambda: len(h.on_sim()) == 1, 5)
            assert texts(h) == ["probe"]


# -- the minimal profile's SMS quirks ----------------------------------------------------------


def minimal_sms_quirks():
    """The ``minimal`` profile: plain ERROR for everything (no +CMEE), an empty
    +CMGL among them, a stray OK after ERROR, delete flag refused, +CPMS?
    refused, indexes never reused, no echo, bare AT answered ERROR."""
    from modem.sim import PROFILES

    return PROFILES["minimal"]


async def test_minimal_profile_sms_quirks_receive_and_delete():
    text = "".join(chr(65 + i % 26) for i in range(300))
    profile = minimal_sms_quirks()
    async with running(profile, before=lambda sim: sim.deliver("stored while down")) as h:
        h.sim.deliver("live one")
        h.sim.deliver(text)
        await h.wait_for(lambda: len(h.got) == 3, 10)
        await h.settle()
        assert texts(h) == ["stored while down", "live one", text]
        assert not h.deleted_before_ack
        r = await h.service.send("2936", "reply")
        assert len(r.mrs) == 1


async def test_plain_error_for_an_empty_listing_does_not_spin(fast_timing):
    # "+CMGL" on an empty store answers a plain ERROR (no +CMEE): taken as empty,
    # not retried back to back
    async with running(minimal_sms_quirks(), service_kwargs={"periodic_sweep": 0}) as h:
        await start_up_done(h)
        before = h.service.stats["sweeps"]
        h.service.request_sweep()
        await asyncio.sleep(0.3)  # room for back-to-back sweeps, were there any
        assert h.service.stats["sweeps"] - before == 1


# -- defect 5 with a module whose storage defaults to ME after a reboot -------------------------


async def test_delete_after_reboot_never_hits_the_boot_default_storage(fast_timing):
    import dataclasses

    from modem.sim import PROFILES

    profile = dataclasses.replace(PROFILES["generic"], cpms_default=("ME", "ME", "ME"))

    def before(sim: SimModem) -> None:
        # an unread SMS in ME at the index the SM message will take
        (raw,) = codec.build_delivers(
            "+15550001234", "unread in ME", scts=now_utc(), encoding=None, ref=0, smsc=None
        )
        sim.store_raw(raw, mem="ME")

    async with running(profile, before=before) as h:
        base = h.service.consumer

        async def rebooting(item: Inbound) -> None:
            await base(item)
            h.sim.fault("reboot")
            while h.session.ready.is_set():
                await asyncio.sleep(0.005)

        h.service.consumer = rebooting
        h.sim.deliver("accepted during a reboot")
        await h.wait_for(lambda: "accepted during a reboot" in texts(h), 5)
        # the message in ME (the module's boot default) is swept too: handed
        # over, and deleted only after the acknowledgement - never unread
        await h.wait_for(lambda: "unread in ME" in texts(h), 10)
        await h.settle()
        assert not h.deleted_before_ack
        assert texts(h).count("accepted during a reboot") == 1
        assert not h.sim.storage("SM").messages() and not h.sim.storage("ME").messages()


async def test_storage_that_stays_full_is_reported(caplog):
    # the SIM is full of drafts (not received messages: left alone) and one held
    # part: the part is handed over to free a slot, and the service warns that
    # storage is still full of what it may not delete
    (part,) = first_parts(1, scts=now_utc())

    def before(sim: SimModem) -> None:
        store = sim.storage("SM")
        for _ in range(store.capacity - 1):
            sim.store_raw(bytes.fromhex("0001000100"), length=4, stat=C.MessageStat.STO_UNSENT)
        sim.deliver(pdu=part)

    async with running(before=before) as h:
        await h.wait_for(lambda: len(h.got) == 1, 5)
        (item,) = h.got
        assert isinstance(item, ReceivedMessage) and not item.complete
        await h.wait_for(lambda: "still full" in caplog.text, 5)
        assert len(h.on_sim()) == h.sim.storage("SM").capacity - 1


async def test_storage_full_of_deliverable_messages_does_not_split_a_held_message():
    # the SIM is nearly full of messages stored without a cue; a first part
    # arrives: the sweep that storage pressure asks for hands those over and
    # frees their slots, so the held part waits for its partner
    parts = codec.build_delivers("2936", "P" * 250, scts=now_utc(), encoding=None, ref=5, smsc=None)
    async with running(service_kwargs={"periodic_sweep": 0}) as h:
        await start_up_done(h)
        store = h.sim.storage("SM")
        for i in range(store.capacity - 2):
            (raw,) = codec.build_delivers(
                "+15550001111", f"quiet {i}", scts=now_utc(), encoding=None, ref=0, smsc=None
            )
            h.sim.store_raw(raw)  # no +CMTI
        h.sim.deliver(pdu=parts[0].hex())
        await h.wait_for(lambda: len(h.got) >= 1 + store.capacity - 2, 10)
        h.sim.deliver(pdu=parts[1].hex())
        await h.wait_for(lambda: "P" * 250 in texts(h), 5)
        assert not [i for i in h.got if isinstance(i, ReceivedMessage) and not i.complete]
        await h.settle()


async def test_store_refilled_by_new_arrivals_does_not_split_a_held_message():
    # a part is held; the SIM fills up and the network holds 40 more messages:
    # the sweep frees slots, the network refills them at once, so the store is
    # full again when the sweep ends - with messages that will be handed over,
    # not a reason to hand over the held part incomplete
    parts = codec.build_delivers("2936", "Q" * 250, scts=now_utc(), encoding=None, ref=6, smsc=None)
    at_once = SimTiming(network_retry_delay=0.0)  # a freed slot is refilled before the next command
    async with running(service_kwargs={"periodic_sweep": 0}, sim_kwargs={"timing": at_once}) as h:
        await start_up_done(h)
        h.sim.deliver(pdu=parts[0].hex())
        await h.wait_for(lambda: len(h.on_sim()) == 1)
        h.sim.fault("storage-full")
        for i in range(40):  # more than the slots the sweep frees
            h.sim.deliver(f"held back {i}")
        h.client._on_data(b'\r\n+CIEV: "smsfull",1\r\n')
        await h.wait_for(lambda: {f"held back {i}" for i in range(40)} <= set(texts(h)), 10)
        h.sim.deliver(pdu=parts[1].hex())
        await h.wait_for(lambda: "Q" * 250 in texts(h), 5)
        assert not [i for i in h.got if isinstance(i, ReceivedMessage) and not i.complete]
        await h.settle()


async def test_direct_pdu_that_does_not_decode_is_not_acknowledged_at_first():
    # right length, wrong content (a flipped octet looks so): RP-ERROR first;
    # only the same PDU delivered again is reported as undecodable
    (good,) = codec.build_delivers(
        "2936", "flipped", scts=now_utc(), encoding=None, ref=0, smsc=None
    )
    bad = bytearray(good)
    bad[-8] = 0xFF  # inside TP-UD length/data: the septets no longer add up
    bad = bytes(bad)
    bad_hex = bad.hex().upper()
    assert C.pdu_line_damage(bad_hex, len(bad) - 1) == ""
    with pytest.raises(ValueError):
        pdu.decode(bad_hex, smsc=True)
    async with running(config=DIRECT) as h:
        writes = record_writes(h)
        h.sim.fault("urc", f"+CMT: ,{len(bad) - 1}", bad_hex)
        await h.wait_for(lambda: any(w.startswith(b"AT+CNMA=2") for w in writes), 5)
        assert not h.got
        h.sim.fault("urc", f"+CMT: ,{len(bad) - 1}", bad_hex)
        await h.wait_for(lambda: len(h.got) == 1, 5)
        (item,) = h.got
        assert isinstance(item, Undecodable) and item.raw == bad_hex


async def test_stored_pdu_that_does_not_decode_is_read_twice_before_reported():
    async with running(service_kwargs={"periodic_sweep": 0}) as h:
        await start_up_done(h)
        writes = record_writes(h)
        (index,) = h.sim.deliver(pdu="07911326040000F0")  # SMSC only: no TPDU
        await h.wait_for(lambda: any(isinstance(i, Undecodable) for i in h.got), 5)
        await h.settle()
        reads = [w for w in writes if w == f"AT+CMGR={index}\r".encode()]
        assert len(reads) == 2  # a noisy line could have changed a good PDU
