#!/usr/bin/env python3
"""Benchmark the PDU codec against python-gsmmodem-new and python-gammu.

Times, per PDU, decoding SMS-DELIVERs (as ``AT+CMGR`` hands them over: a hex
string) and encoding SMS-SUBMITs (text in, ``AT+CMGS`` hex and TPDU length
out) with our codec, python-gsmmodem-new (pure Python) and python-gammu
(libGammu, C) on the same PDUs in one run. Each figure is the best of
``--repeat`` timeit runs, in microseconds per operation; best-of is the
figure least disturbed by other load on the machine, and the runs of the
three sides are interleaved so such load hits them alike.

Peak memory per operation is measured with tracemalloc (Python allocations
only: libGammu's own C allocations are invisible to it, so the gammu column
counts just the Python objects python-gammu builds).

Before timing, every case is checked: all three decoders must return the
same text, and every encoder's PDUs must decode here to the input text, so
the table compares like with like.

Usage::

    python tools/bench_pdu.py                 # the table (about 15 s)
    python tools/bench_pdu.py --repeat 9      # steadier figures, slower
    python tools/bench_pdu.py --profile       # cProfile of our side, top functions
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import sys
import timeit
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import gammu
import gsmmodem.pdu as gsmpdu

import pdu
from pdu import deliver_parts, submit_parts

NUMBER = "+15551234567"
SMSC = pdu.Address.parse("+31624000000")
SCTS = datetime(2024, 5, 17, 9, 30, 15, tzinfo=UTC)

#: A real SMS-DELIVER: the worked example reproduced in countless modem
#: guides ("How are you?" from +31641600986 via SMSC +31624000000).
REAL_DELIVER = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"

TEXT_160 = ("Twilio command: set interval=300 report=on led=blink; ack by 2936. " * 3)[:160]
# BMP only: python-gsmmodem cannot encode characters past U+FFFF.
TEXT_UCS2_70 = "Команда: перезагрузка устройства, интервал 300 с, ответ на номер 2936!"
TEXT_300 = (TEXT_160 * 2)[:300]


@dataclass
class Case:
    name: str
    ours: Callable[[], object]
    gsmmodem: Callable[[], object]
    gammu: Callable[[], object]


def _deliver_hex(text: str) -> str:
    (msg, *_rest) = deliver_parts(NUMBER, text, scts=SCTS, smsc=SMSC, ref=42)
    return pdu.encode(msg).hex().upper()


def _gammu_encode(text: str) -> list[tuple[str, int]]:
    out = []
    unicode = pdu.alphabet.gsm7_length(text) is None
    for m in gammu.EncodeSMS(
        {
            "Class": -1,
            "Unicode": unicode,
            "Entries": [{"ID": "ConcatenatedTextLong", "Buffer": text}],
        }
    ):
        m["SMSC"] = {"Location": 0, "Number": ""}
        m["Number"] = NUMBER
        raw = gammu.EncodePDU(m)
        out.append((raw.hex().upper(), len(raw) - 1 - raw[0]))
    return out


def _gsmmodem_encode(text: str) -> list[tuple[str, int]]:
    return [
        (bytes(p.data).hex().upper(), p.tpduLength)
        for p in gsmpdu.encodeSmsSubmitPdu(NUMBER, text, requestStatusReport=False)
    ]


def _ours_encode(text: str) -> list[tuple[str, int]]:
    return [pdu.cmgs_pdu(m) for m in submit_parts(NUMBER, text, ref=42)]


def _decode_case(name: str, hex_pdu: str) -> Case:
    return Case(
        name,
        lambda: pdu.decode(hex_pdu),
        lambda: gsmpdu.decodeSmsPdu(hex_pdu),
        lambda: gammu.DecodePDU(bytes.fromhex(hex_pdu)),
    )


def _encode_case(name: str, text: str) -> Case:
    return Case(
        name,
        lambda: _ours_encode(text),
        lambda: _gsmmodem_encode(text),
        lambda: _gammu_encode(text),
    )


assert len(TEXT_UCS2_70.encode("utf-16-be")) == 140  # exactly one UCS-2 message


def build_cases() -> list[Case]:
    return [
        _decode_case("decode DELIVER 12 ch GSM7 (real)", REAL_DELIVER),
        _decode_case("decode DELIVER 160 ch GSM7", _deliver_hex(TEXT_160)),
        _decode_case("decode DELIVER 70 u UCS-2", _deliver_hex(TEXT_UCS2_70)),
        _decode_case("decode DELIVER part 1/2 (UDH)", _deliver_hex(TEXT_300)),
        _encode_case("encode SUBMIT 160 ch GSM7", TEXT_160),
        _encode_case("encode SUBMIT 70 u UCS-2", TEXT_UCS2_70),
        _encode_case("encode SUBMIT 300 ch (2 parts)", TEXT_300),
    ]


def check(cases: list[Case]) -> None:
    """Fail loudly unless the three sides produce the same content."""
    for case in cases:
        if case.name.startswith("decode"):
            ours = case.ours().tp_ud.text  # type: ignore[attr-defined]
            g = case.gammu()["Text"]  # type: ignore[index]
            m = case.gsmmodem()["text"]  # type: ignore[index]
            m = m.encode("utf-16-be", "surrogatepass").decode("utf-16-be")
            if not (ours == g == m):
                raise SystemExit(f"{case.name}: decoders disagree: {ours!r} {g!r} {m!r}")
        else:
            texts = []
            for side in (case.ours, case.gsmmodem, case.gammu):
                parts = side()
                texts.append("".join(pdu.decode(h).tp_ud.text for h, _n in parts))  # type: ignore[union-attr]
            if len(set(texts)) != 1:
                raise SystemExit(f"{case.name}: encoders disagree: {texts!r}")


def best_us(fns: list[Callable[[], object]], repeat: int, target: float) -> list[float]:
    """Best µs/op of each function. The runs are interleaved (a, b, c, a, b,
    c...) so that load from elsewhere on the machine hits all sides alike."""
    timers = [timeit.Timer(fn) for fn in fns]
    numbers = []
    for timer in timers:
        number = 1
        while timer.timeit(number) < target:
            number *= 2
        numbers.append(number)
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, (timer, number) in enumerate(zip(timers, numbers, strict=True)):
            best[i] = min(best[i], timer.timeit(number) / number)
    return [b * 1e6 for b in best]


def peak_kib(fn: Callable[[], object]) -> float:
    fn()  # warm caches so they are not counted
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
        del result
    finally:
        tracemalloc.stop()
    return peak / 1024


def run(repeat: int, target: float) -> None:
    cases = build_cases()
    check(cases)
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.machine()} {platform.processor() or ''}".rstrip()
    )
    print(f"# gammu {gammu.Version()[0]} (python-gammu {gammu.Version()[1]}), best of {repeat}")
    head = (
        f"{'case':34} {'ours µs':>9} {'gsmmodem':>9} {'gammu':>9} "
        f"{'gsmm/ours':>9} {'ours/gammu':>10}   peak KiB ours/gsmm/gammu*"
    )
    print(head)
    print("-" * len(head))
    for case in cases:
        t = best_us([case.ours, case.gsmmodem, case.gammu], repeat, target)
        mem = [peak_kib(f) for f in (case.ours, case.gsmmodem, case.gammu)]
        print(
            f"{case.name:34} {t[0]:9.1f} {t[1]:9.1f} {t[2]:9.1f} "
            f"{t[1] / t[0]:8.2f}x {t[0] / t[2]:9.2f}x   "
            f"{mem[0]:.1f} / {mem[1]:.1f} / {mem[2]:.1f}"
        )
    print("* gammu: Python objects only; libGammu's C allocations are not traced.")


def profile() -> None:
    cases = build_cases()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(2000):
        for case in cases:
            case.ours()
    prof.disable()
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="timeit repeats, best is kept")
    ap.add_argument(
        "--target",
        type=float,
        default=0.04,
        help="seconds per timeit run (loops are doubled until)",
    )
    ap.add_argument("--profile", action="store_true", help="profile our side instead")
    args = ap.parse_args(argv)
    if args.profile:
        profile()
    else:
        run(args.repeat, args.target)


if __name__ == "__main__":
    main()
