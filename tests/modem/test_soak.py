"""Soak: 1,000 MT messages while faults are injected at random (kept well under 60 s).

Ends with every message handed to the consumer at least once, none deleted
from the SIM before its acknowledgement, every repeat carrying the same
identity, and no task, future or subscription left behind.
"""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from modem.sms import ReceivedMessage

from .harness import running

N_MESSAGES = int(os.environ.get("SOAK_MESSAGES", "1000"))
FAULTS = ["reboot", "garbage", "drop", "cms-error", "disconnect", "storage-full", "corrupt"]


@pytest.mark.soak
@pytest.mark.timeout(90)
async def test_soak_1000_messages_random_faults(fast_timing):
    rng = random.Random(int(os.environ.get("SOAK_SEED", "2026")))
    async with running("bg96", service_kwargs={"periodic_sweep": 1.0, "verify_reads": True}) as h:
        sent: list[str] = []
        faults_done: list[str] = []
        for i in range(N_MESSAGES):
            text = f"cmd {i:04d}"
            duplicate = rng.random() < 0.02
            h.sim.deliver(text, sender="2936", duplicate=duplicate)
            sent.append(text)
            if i % 25 == 24:
                fault = rng.choice(FAULTS)
                faults_done.append(fault)
                if fault == "drop":
                    h.sim.fault("drop", 0.05)
                elif fault == "corrupt":
                    h.sim.fault("corrupt", 0.01)
                elif fault == "cms-error":
                    h.sim.fault("cms-error", rng.choice([42, 314, 500]), 2)
                elif fault == "disconnect":
                    h.sim.fault("disconnect", 30)
                elif fault == "garbage":
                    h.sim.fault("garbage", 32)
                else:
                    h.sim.fault(fault)
                await asyncio.sleep(0.02)
                h.sim.fault("clear")
            if i % 5 == 4:
                await asyncio.sleep(0.002)
        expected = set(sent)

        def delivered() -> set[str]:
            return {i.text for i in h.got if isinstance(i, ReceivedMessage) and i.text}

        try:
            await h.wait_for(lambda: expected <= delivered(), 45)
        except TimeoutError:
            missing = sorted(expected - delivered())
            raise AssertionError(
                f"{len(missing)} missing, e.g. {missing[:5]}; on SIM {len(h.on_sim())}, "
                f"network-held {len(h.sim.pending_mt)}, state {h.sim.state}, "
                f"ready {h.session.ready.is_set()}, service {h.service.stats}, "
                f"session {h.session.stats}, client {h.client.stats}, faults {faults_done}"
            ) from None
        await h.settle()
        assert not h.deleted_before_ack
        by_text: dict[str, set[str]] = {}
        for item in h.got:
            if isinstance(item, ReceivedMessage) and item.text:
                by_text.setdefault(item.text, set()).add(item.identity)
        # every repeat (network duplicate or a re-read after a lost delete) has one identity
        assert all(len(ids) == 1 for t, ids in by_text.items() if t in expected)
        assert set(faults_done) >= {"reboot", "disconnect", "storage-full"}
