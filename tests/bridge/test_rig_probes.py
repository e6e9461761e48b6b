"""The crash and soak rigs see what the bridge journals: their probes
announce each journal write the rigs count and place kills by."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_a_reply_sent_with_the_next_ones_claim_is_announced_as_both(tmp_path: Path) -> None:
    """``mark_sent_and_claim`` is one transaction: the probes say it as the
    reply sent (the soak injects the next Command on it) and the next claimed."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.bridge.rig_e2e import install_probes
        install_probes()
        from bridge.journal import Journal

        def queued(j, n):
            eid = j.receive(modem="m0", sender="2936", body=f"ping {{n}}", identity=f"i{{n}}",
                            part_ids=(), sid=f"SM{{n}}", product="wireless", coding="gsm7").entry_id
            j.start(eid, idempotent=True)
            j.complete(eid, ok=True, to="2936", reply=f"pong {{n}}")
            return eid

        with Journal.open({str(tmp_path / "journal.db")!r}) as j:
            a, b, c = queued(j, 1), queued(j, 2), queued(j, 3)
            j.mark_sending(a)
            j.mark_sent_and_claim(a, 7, b)
            j.mark_sent_and_claim(b, 8, a)  # nothing to claim: a is sent
            j.mark_sending(c)
            j.unclaim(c)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("@@")]
    tail = said[said.index("@@mark_sending 1") :]
    assert tail == [
        "@@mark_sending 1",
        "@@mark_sent 1",
        "@@mark_sending 2",
        "@@mark_sent 2",
        "@@mark_sending 3",
        "@@unclaim 3",
    ]
