"""Module profiles: identity, start-up lines, storage sizes, defaults and quirks.

A profile is data only: the parts of :class:`modem.sim.core.SimModem` read it. Facts come from the
modules' public AT command manuals and from public bug reports that quote
module traffic (named per profile below); what no public source settled is
marked "assumed". Identity strings (IMEI, IMSI, ICCID, revisions) are
made up in the right shape.

Sources (learned from, not copied):

* Quectel BG96 AT Commands Manual V2.1/V2.3 and EC2x AT Commands Manual:
  start-up ``RDY`` then ``+CFUN: 1``, ``+CPIN: READY``, ``+QUSIM: 1``,
  ``+QIND: SMS DONE`` (EC25 also ``+QIND: PB DONE``); ``AT+QCCID``;
  ``+CMEE`` default 1 (assumed from the manuals' examples); ``+CNMI`` default
  ``2,1,0,0,0``. Newer BG96 firmware also reports ``APP RDY`` (FreeRTOS
  Cellular-Interface-Reference-Quectel-BG96 issue #17, manual V2.5 §21.7):
  not modelled (older revision string).
* SMS indexes of Quectel BG96 start at 0: ARMmbed/mbed-os PR #11249.
* Quectel BG96 answers plain ``OK`` to ``+CMGL`` when nothing matches:
  stasel/NodeGSM PR #4.
* SIMCom SIM7500/SIM7600 AT Command Manual: start-up ``RDY``, ``+CPIN: READY``,
  ``SMS DONE``, ``PB DONE``; ``AT+CICCID`` answers ``ICCID: <iccid>``.
  The SMS prompt sent as ``<CR><LF>><CR><LF>`` (no space) is documented for
  the SIMCom SIM7670G in gammu issue #1176 / PR #1177 (gammu before that fix
  times out on it); the sim7600 profile carries this quirk as the SIMCom
  representative.
* u-blox SARA-R4 AT Commands Manual (UBX-17003787): no start-up banner;
  ``AT+CCID`` answers ``+CCID: <iccid>``; indexes from 1. Its ``+CMEE`` and
  ``+CNMI`` defaults are assumed.

The ``minimal`` profile is no module: it combines quirks that real modules
show (each named in docs/simulator.md) so that a client can be tested
against all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Profile:
    """Everything that differs between simulated modules."""

    name: str
    manufacturer: str
    model: str
    revision: str
    imei: str
    imsi: str
    iccid: str
    #: Start-up lines after power-on / reset, in order (each an unsolicited line).
    startup_urcs: tuple[str, ...]
    #: Lines after the SIM is unlocked (+CPIN) and SMS is initialised.
    sim_ready_urcs: tuple[str, ...]
    #: ICCID commands and the prefix of their answer, e.g. {"+QCCID": "+QCCID: "}.
    iccid_commands: dict[str, str] = field(default_factory=dict)
    sm_capacity: int = 30
    me_capacity: int = 50
    #: First storage index (Quectel/SIMCom 0, u-blox 1).
    index_base: int = 0
    #: Default +CNMI after power-up: mode, mt, bm, ds, bfr.
    cnmi_default: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    cmee_default: int = 0
    #: The +CMGS/+CMGW prompt: TS 27.005 §3.5.1 "<CR><LF>> " (four characters),
    #: or the quirk with a line ending after ">" instead of the space.
    prompt: bytes = b"\r\n> "
    #: +CMGL with nothing to list: None answers OK, a number answers +CMS ERROR.
    cmgl_empty_error: int | None = None
    #: +CMGR of an empty (in-range) index: None answers OK, a number +CMS ERROR.
    cmgr_empty_error: int | None = 321
    #: Longest command line kept (characters after "AT"); longer lines -> ERROR.
    max_line: int = 556
    #: Bare ``AT`` (nothing after it) answers ``ERROR``: any final result code
    #: still proves the module alive and in sync (seen on minimal modules).
    bare_at_error: bool = False
    #: False: ``AT+CMEE`` (every form) answers ``ERROR`` and every error is a
    #: plain ``ERROR``, never ``+CME ERROR``/``+CMS ERROR``.
    cmee_supported: bool = True
    #: ``+CMGR`` of an empty index answers plain ``ERROR`` and then a second,
    #: stray ``OK`` line (instead of ``cmgr_empty_error``).
    stray_ok_after_error: bool = False
    #: ``AT+CMGD=<index>,<delflag>`` answers ``ERROR`` (``AT+CMGD=<index>`` works).
    cmgd_flag_refused: bool = False
    #: ``AT+CPMS?`` answers ``ERROR`` (the set form works).
    cpms_query_refused: bool = False
    #: No echo ever: echo is off at power-up and ``ATE1`` answers OK but changes nothing.
    echo_fixed_off: bool = False
    #: Storage allocates the index after the last one allocated (cyclically,
    #: skipping occupied slots) instead of the lowest free one.
    indexes_never_reused: bool = False
    #: The values each ``+CNMI`` parameter (<mode>,<mt>,<bm>,<ds>,<bfr>, TS 27.005
    #: §3.4.1) takes, as ``AT+CNMI=?`` lists them; a set outside them answers
    #: +CMS ERROR 303. Modules differ: Motorola G20 "(0,3),(0-2),(0,2),(0),(0)",
    #: Cinterion <bfr> (1) only, Nordic nRF91 <mode> 0 or 3.
    cnmi_values: tuple[tuple[int, ...], ...] = (
        (0, 1, 2, 3),
        (0, 1, 2, 3),
        (0, 2),
        (0, 1, 2),
        (0, 1),
    )
    #: ``+CPMS`` <mem1>,<mem2>,<mem3> after power-up / reboot.
    cpms_default: tuple[str, str, str] = ("SM", "SM", "SM")
    operator: str = "Twilio"
    operator_numeric: str = "310260"
    #: Access technology for +COPS/+CREG (7 = E-UTRAN, 8 = E-UTRAN Cat-M1 / 9 NB-IoT).
    act: int = 7
    smsc: str = "+15550000000"


_GENERIC = Profile(
    name="generic",
    manufacturer="SIMULATED",
    model="SIM-MODEM",
    revision="SIM01A01",
    imei="356938035643809",
    imsi="310260000000001",
    iccid="8901260000000000017",
    startup_urcs=("RDY",),
    sim_ready_urcs=("+CPIN: READY", "SMS Ready"),
    iccid_commands={"+CCID": "+CCID: "},
    sm_capacity=30,
    me_capacity=50,
    index_base=1,
    cnmi_default=(0, 0, 0, 0, 0),
    cmee_default=1,
)

PROFILES: dict[str, Profile] = {
    "generic": _GENERIC,
    # Quectel BG96 (LTE Cat-M1/NB-IoT). BG96 AT Commands Manual: RDY, +CFUN: 1,
    # +CPIN: READY, +QUSIM: 1, +QIND: SMS DONE; QCCID; SM 0-based, 50 ME.
    "bg96": Profile(
        name="bg96",
        manufacturer="Quectel",
        model="BG96",
        revision="BG96MAR02A07M1G",
        imei="866425030000001",
        imsi="310260000000002",
        iccid="8901260000000000025",
        startup_urcs=("RDY", "+CFUN: 1"),
        sim_ready_urcs=("+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE"),
        iccid_commands={"+QCCID": "+QCCID: ", "+CCID": "+CCID: "},
        sm_capacity=30,
        me_capacity=50,
        index_base=0,
        cnmi_default=(2, 1, 0, 0, 0),
        cmee_default=1,
        act=8,
    ),
    # Quectel EC25 (LTE Cat-4). EC2x AT Commands Manual: RDY, +CFUN: 1,
    # +CPIN: READY, +QUSIM: 1, +QIND: SMS DONE, +QIND: PB DONE; ME holds 255.
    "ec25": Profile(
        name="ec25",
        manufacturer="Quectel",
        model="EC25",
        revision="EC25EFAR06A06M4G",
        imei="866425040000003",
        imsi="310260000000003",
        iccid="8901260000000000033",
        startup_urcs=("RDY", "+CFUN: 1"),
        sim_ready_urcs=("+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"),
        iccid_commands={"+QCCID": "+QCCID: ", "+CCID": "+CCID: "},
        sm_capacity=30,
        me_capacity=255,
        index_base=0,
        cnmi_default=(2, 1, 0, 0, 0),
        cmee_default=1,
    ),
    # SIMCom SIM7600. SIM7500/7600 AT manual: RDY, +CPIN: READY, SMS DONE,
    # PB DONE; +CICCID answers "ICCID: ". Prompt quirk: gammu issue #1176.
    "sim7600": Profile(
        name="sim7600",
        manufacturer="SIMCOM INCORPORATED",
        model="SIMCOM_SIM7600G-H",
        revision="LE20B04SIM7600G22",
        imei="862636050000004",
        imsi="310260000000004",
        iccid="8901260000000000041",
        startup_urcs=("RDY",),
        sim_ready_urcs=("+CPIN: READY", "SMS DONE", "PB DONE"),
        iccid_commands={"+CICCID": "ICCID: ", "+CCID": "+CCID: "},
        sm_capacity=30,
        me_capacity=50,
        index_base=0,
        cnmi_default=(2, 1, 0, 0, 0),
        cmee_default=0,
        prompt=b"\r\n>\r\n",
    ),
    # u-blox SARA-R410M. SARA-R4 AT manual: no start-up banner; +CCID;
    # 1-based indexes. +CMEE and +CNMI defaults assumed.
    "sara-r410m": Profile(
        name="sara-r410m",
        manufacturer="u-blox",
        model="SARA-R410M-02B",
        revision="L0.0.00.00.05.06 [Feb 03 2018 13:00:41]",
        imei="352753090000005",
        imsi="310260000000005",
        iccid="8901260000000000058",
        startup_urcs=(),
        sim_ready_urcs=(),
        iccid_commands={"+CCID": "+CCID: "},
        sm_capacity=23,
        me_capacity=23,
        index_base=1,
        cnmi_default=(1, 0, 0, 0, 0),
        cmee_default=0,
        # SARA-R4 manual (UBX-17003787 R16, +CREG/+CEREG <AcT>): R410M-02B reports
        # 7 (E-UTRAN, Cat M1) or 9 (NB1); 8 (EC-GSM-IoT) only on the old -01B.
        act=7,
    ),
    # A composite of quirks seen on real modules, not one module (see
    # docs/simulator.md, "Profiles and their quirks").
    "minimal": Profile(
        name="minimal",
        manufacturer="MINIMAL",
        model="MIN-MODEM",
        revision="MIN01A01",
        imei="356938035643817",
        imsi="310260000000006",
        iccid="8901260000000000066",
        startup_urcs=(),
        sim_ready_urcs=(),
        iccid_commands={"+CCID": "+CCID: "},
        sm_capacity=20,
        me_capacity=20,
        index_base=1,
        cnmi_default=(0, 0, 0, 0, 0),
        cmee_default=0,
        cmgl_empty_error=321,
        bare_at_error=True,
        cmee_supported=False,
        stray_ok_after_error=True,
        cmgd_flag_refused=True,
        cpms_query_refused=True,
        echo_fixed_off=True,
        indexes_never_reused=True,
    ),
}
