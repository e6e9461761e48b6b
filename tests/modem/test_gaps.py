"""The two limits docs/modem.md used to list, against the simulated module.

1. Messages a module stores in its boot-default storage before the session
   restores ``+CPMS`` (TS 27.005 §3.2.2: received messages go to ``<mem3>``)
   are swept: the session learns the module's own storage before it sets its
   own, and the SMS service sweeps it with that storage selected as ``<mem1>``.
2. A read or delete queued on the client's lock when a reboot is noticed is
   not written: the client checks its precondition right before the write.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest

from modem import commands as C
from modem.errors import ModemRebooted
from modem.sim import PROFILES, SimModem, codec
from modem.sms import Inbound, ReceivedMessage

from .harness import Harness, running

ME_DEFAULT = dataclasses.replace(PROFILES["generic"], cpms_default=("ME", "ME", "ME"))
MINIMAL_ME_DEFAULT = dataclasses.replace(PROFILES["minimal"], cpms_default=("ME", "ME", "ME"))
SET_SM = b'AT+CPMS="SM","SM","SM"\r'
SELECT_ME = b'AT+CPMS="ME","SM","SM"\r'


def texts(h: Harness) -> list[str | None]:
    return [i.text for i in h.got if isinstance(i, ReceivedMessage)]


def deliver_pdu(text: str) -> bytes:
    (raw,) = codec.build_delivers(
        "+15550001234",
        text,
        scts=datetime.now(UTC).replace(microsecond=0),
        encoding=None,
        ref=0,
        smsc=None,
    )
    return raw


async def start_up_done(h: Harness) -> None:
    """The start-up sweeps are over: a probe message sent after them is handled."""
    await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
    h.sim.deliver("probe")
    await h.wait_for(lambda: "probe" in texts(h))
    await h.settle()


def wire(h: Harness) -> bytes:
    assert h.wire is not None
    return bytes(h.wire.data)


# -- 1. the module's boot-default storage --------------------------------------------------


async def test_messages_stored_in_boot_default_storage_during_reboot_are_swept(fast_timing):
    # the module boots with ME while the session configures SM: what arrives
    # between the boot and the re-init's +CPMS= lands in ME
    async with running(ME_DEFAULT) as h:
        await start_up_done(h)
        landed: list[int] = []
        rebooted = [False]
        orig = h.client._write

        def write(data: bytes) -> None:
            if rebooted[0] and data.startswith(b"AT+CMGF=0") and not landed:
                # the re-init is under way, +CPMS not restored yet
                landed.extend(h.sim.deliver("during re-init 1"))
                landed.extend(h.sim.deliver("during re-init 2"))
            orig(data)

        h.client._write = write
        mark = len(wire(h))
        rebooted[0] = True
        h.sim.fault("reboot")
        await h.wait_for(lambda: {"during re-init 1", "during re-init 2"} <= set(texts(h)), 10)
        assert len(landed) == 2
        await h.settle()
        assert not h.deleted_before_ack
        assert texts(h).count("during re-init 1") == 1
        after = wire(h)[mark:]
        # ME selected for the listing, the reads and the deletes, then SM again
        me = after.index(SELECT_ME)
        back = after.index(SET_SM, me)
        between = after[me:back]
        assert between.count(b"AT+CMGL=4\r") == 1
        assert between.count(b"AT+CMGD=") == 2
        assert h.sim.cpms == ["SM", "SM", "SM"]


async def test_boot_default_storage_found_with_cpms_test_when_the_query_is_refused(fast_timing):
    # minimal refuses +CPMS?: the receive storages come from +CPMS=?
    def before(sim: SimModem) -> None:
        assert sim.deliver("stored before start-up") == [1]
        assert len(sim.storage("ME")) == 1

    async with running(MINIMAL_ME_DEFAULT, before=before) as h:
        await h.wait_for(lambda: "stored before start-up" in texts(h), 10)
        await h.settle()
        assert not h.deleted_before_ack
        assert h.sim.cpms == ["SM", "SM", "SM"]
        assert b"AT+CPMS=?\r" in wire(h)
        assert h.session.other_storages == ("ME",)


async def test_cmti_naming_another_storage_sweeps_that_storage(fast_timing):
    async with running() as h:
        await start_up_done(h)
        # the module uses the configured storage: no other storage is swept
        assert SELECT_ME not in wire(h)
        h.sim.store_raw(deliver_pdu("indicated in ME"), mem="ME", notify=True)
        await h.wait_for(lambda: "indicated in ME" in texts(h), 5)
        await h.settle()
        assert not h.deleted_before_ack
        assert wire(h).count(SELECT_ME) == 1
        assert h.sim.cpms == ["SM", "SM", "SM"]


async def test_reboot_of_a_module_using_the_configured_storage_sweeps_only_mem1(fast_timing):
    async with running() as h:
        await start_up_done(h)
        inits = h.session.stats["inits"]
        h.sim.fault("reboot")
        await h.wait_for(lambda: h.session.stats["inits"] > inits and h.session.ready.is_set())
        await start_up_done(h)
        assert SELECT_ME not in wire(h)
        assert h.sim.cpms == ["SM", "SM", "SM"]


# -- 2. a command queued on the lock when a reboot is noticed ---------------------------


async def test_delete_queued_behind_a_slow_command_is_not_written_after_a_reboot(fast_timing):
    async with running(ME_DEFAULT) as h:
        await start_up_done(h)
        # an unread message in ME at the index the SM message will take: a
        # +CMGD written after the reboot, before +CPMS is restored, deletes it
        assert h.sim.store_raw(deliver_pdu("unread in ME"), mem="ME") == 1
        base = h.service.consumer
        loop = asyncio.get_running_loop()
        slow: list[asyncio.Task[object]] = []
        mark: list[int] = []
        #: (SM index 1 held, ME index 1 held) when each re-initialisation ends
        held_at_reinit: list[tuple[bool, bool]] = []

        def reboot() -> None:
            mark.append(len(wire(h)))
            h.sim.fault("reboot")

        async def consumer(item: Inbound) -> None:
            await base(item)
            if slow or not isinstance(item, ReceivedMessage) or item.text != "doomed delete":
                return
            # a slow command holds the line (the module hangs on it) ...
            h.sim.fault("hang")
            slow.append(asyncio.create_task(h.client.execute(C.simple("AT+CSQ", timeout=5))))
            assert h.wire is not None
            await h.wire.wait_for(lambda: b"AT+CSQ\r" in wire(h))
            # ... the service's +CMGD queues behind it as this returns, then the
            # module reboots (RDY fails the slow command and clears readiness)
            loop.call_soon(reboot)

        h.service.consumer = consumer
        h.session.on_ready.append(
            lambda: held_at_reinit.append(
                (h.sim.storage("SM").get(1) is not None, h.sim.storage("ME").get(1) is not None)
            )
        )
        assert h.sim.deliver("doomed delete") == [1]
        await h.wait_for(lambda: bool(slow), 5)
        with pytest.raises(ModemRebooted):
            await slow[0]
        await h.wait_for(lambda: bool(held_at_reinit), 10)
        # both messages are still on the module when +CPMS is restored: the
        # queued +CMGD=1 did not run in ME (the boot default) nor anywhere else
        assert held_at_reinit[0] == (True, True)
        await h.wait_for(lambda: "unread in ME" in texts(h), 10)
        await h.settle()
        after = wire(h)[mark[0] :]
        restored = after.index(SET_SM)
        assert b"AT+CMGD" not in after[:restored]  # never reached the wire
        # the SM message was deleted only after the new generation's listing saw it
        relisted = after.index(b"AT+CMGL=4\r", restored)
        assert after.index(b"AT+CMGD=1\r", restored) > relisted
        assert texts(h).count("doomed delete") == 1
        assert not h.deleted_before_ack


async def test_message_split_across_storages_is_joined_and_each_part_deleted_in_its_own(
    fast_timing,
):
    # part 1 arrived in ME (the boot default) before start-up, part 2 comes in
    # SM afterwards: one complete message, each index deleted in its storage
    long_text = "split across storages " + "y" * 180
    part1, part2 = codec.build_delivers(
        "+15550001234",
        long_text,
        scts=datetime.now(UTC).replace(microsecond=0),
        encoding=None,
        ref=7,
        smsc=None,
    )

    def before(sim: SimModem) -> None:
        assert sim.store_raw(part1, mem="ME") == 1

    async with running(ME_DEFAULT, before=before) as h:
        await h.wait_for(lambda: h.service.stats["sweeps"] >= 2)  # SM, then ME
        h.sim.deliver("probe")
        await h.wait_for(lambda: "probe" in texts(h))
        assert texts(h) == ["probe"]  # part 1 is held, not handed over alone
        assert len(h.sim.storage("ME")) == 1
        h.sim.store_raw(part2, mem="SM", notify=True)
        await h.wait_for(lambda: long_text in texts(h), 5)
        await h.settle()
        (msg,) = [i for i in h.got if isinstance(i, ReceivedMessage) and i.text == long_text]
        assert msg.complete and {loc.mem for loc in msg.locations} == {"ME", "SM"}
        assert not h.deleted_before_ack
        assert h.sim.cpms == ["SM", "SM", "SM"]


async def test_mt_boot_default_stands_for_sm_and_me(fast_timing):
    # TS 27.005 §3.1: "MT" is every storage of the ME; with SM configured the
    # other one to sweep is ME (listing MT would list SM's messages twice)
    profile = dataclasses.replace(PROFILES["generic"], cpms_default=("MT", "MT", "MT"))

    def before(sim: SimModem) -> None:
        sim.storage("SM").capacity = 0  # MT fills SM first: make it go to ME
        assert sim.deliver("in MT, that is ME") == [1]
        sim.storage("SM").capacity = 30
        assert len(sim.storage("ME")) == 1

    async with running(profile, before=before) as h:
        await h.wait_for(lambda: "in MT, that is ME" in texts(h), 5)
        await h.settle()
        assert h.session.other_storages == ("ME",)
        assert texts(h).count("in MT, that is ME") == 1
        assert SELECT_ME in wire(h) and b'AT+CPMS="MT"' not in wire(h)
