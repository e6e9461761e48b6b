"""TS 27.007 commands of the simulated module: identity, SIM, signal, network, clock.

3GPP TS 27.007 as the module answers it:

* identity (§5.1-§5.4, §5.6): +CGMI/+GMI, +CGMM/+GMM, +CGMR/+GMR,
  +CGSN/+GSN, +CIMI, and the profile's ICCID command (+CCID, +QCCID,
  +CICCID; EF_ICCID is readable without the PIN, TS 31.102 §4.1.1);
* the SIM (§8.3 +CPIN) with the retry counters of the card
  (:class:`~.card.SimCard`), and the SIM errors of every SIM-dependent
  command (§9.2.1 +CME ERROR, TS 27.005 §3.2.5 +CMS ERROR for SMS commands);
* +CMEE (§9.1), +CSQ (§8.5), +CREG/+CGREG/+CEREG (§7.2, §10.1.20,
  §10.1.22: n 0-2; the registration itself is the network side's), +COPS
  (§7.3: 0 automatic, 2 deregister, 3 set format), +CFUN (§8.2: 0/1/4,
  1,1 resets), +CCLK (§8.15: the module's clock, zone in quarter hours).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from modem.errors import CmeErrorCode, CmsErrorCode

from . import codec as _codec
from .cmdline import EXEC, READ, SET, TEST, Command
from .registry import HANDLERS, ICCID, handler
from .v250 import V250, _Cme, _Cms, _ErrorResult, _Plain

__all__ = ["Ts27007Commands"]


class Ts27007Commands(V250):
    """TS 27.007 commands and the SIM's start-up (see the module docstring)."""

    def _start_sim_init(self) -> None:
        """Quectel/SIMCom: SIM commands answer +CME ERROR: 14 while the SIM
        initialises after power-up (``sim_busy_time`` seconds)."""
        self.card.busy = True
        gen = self._boot_gen
        self._later(self.card.busy_time, lambda: self._sim_init_done(gen))

    def _sim_init_done(self, gen: int) -> None:
        """The SIM finished initialising: report its state (+CPIN URC)."""
        if gen != self._boot_gen:
            return  # a timer of an earlier boot
        self.card.busy = False
        if self._state in ("boot", "hung") or not self.card.inserted:
            return
        state = self.sim_state
        if state == "ready":
            self._sim_ready()
        elif state == "pin":
            self._urc(b"+CPIN: SIM PIN")
        elif state == "puk":
            self._urc(b"+CPIN: SIM PUK")

    @property
    def sim_state(self) -> str:
        """The SIM as TS 27.007 §8.3 sees it: "absent", "busy", "blocked" (PUK
        retries exhausted), "puk" (PIN retries exhausted), "pin" or "ready"."""
        return self.card.state

    def _sim_error(self, name: str) -> _ErrorResult | None:
        """Why a SIM-dependent command cannot run now (TS 27.007 §9.2.1 for
        +CME ERROR, TS 27.005 §3.2.5 for the +CMS ERROR of SMS commands)."""
        cme, cms = {
            "absent": (CmeErrorCode.SIM_NOT_INSERTED, CmsErrorCode.SIM_NOT_INSERTED),
            "busy": (CmeErrorCode.SIM_BUSY, CmsErrorCode.SIM_BUSY),
            "blocked": (CmeErrorCode.SIM_FAILURE, CmsErrorCode.SIM_FAILURE),
            "puk": (CmeErrorCode.SIM_PUK_REQUIRED, CmsErrorCode.SIM_PUK_REQUIRED),
            "pin": (CmeErrorCode.SIM_PIN_REQUIRED, CmsErrorCode.SIM_PIN_REQUIRED),
        }.get(self.sim_state, (None, None))
        if cme is None or cms is None:
            return None
        spec = HANDLERS.get(name)
        return _Cms(cms) if spec is not None and spec.sms else _Cme(cme)

    def _sim_ready(self) -> None:
        for line in self.profile.sim_ready_urcs:
            self._urc(line.encode())
        self._later(self.timing.registration_delay, self._update_registration)

    def _ident(self, cmd: Command, value: str) -> None:
        if cmd.form == TEST:
            return
        if cmd.form != EXEC:
            raise ValueError("exec only")
        self._info(value)

    @handler("+CGMI", "+GMI", pin_free=True)
    def _cmd_cgmi(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.manufacturer)

    @handler("+CGMM", "+GMM", pin_free=True)
    def _cmd_cgmm(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.model)

    @handler("+CGMR", "+GMR", pin_free=True)
    def _cmd_cgmr(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.revision)

    @handler("+CGSN", "+GSN", pin_free=True)
    def _cmd_cgsn(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.imei)

    @handler("+CIMI")
    def _cmd_cimi(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.imsi)

    @handler(ICCID, pin_free=True)
    def _cmd_iccid(self, cmd: Command) -> None:
        if cmd.form == TEST:
            return
        if cmd.form != EXEC:
            raise self._bad_param(cmd.name)
        # EF_ICCID is readable without the PIN (TS 31.102 §4.1.1): no PIN check,
        # but it needs a SIM that is present and initialised.
        if self.sim_state in ("absent", "busy"):
            err = self._sim_error(cmd.name)
            assert err is not None
            raise err
        self._info(self.profile.iccid_commands[cmd.name] + self.profile.iccid)

    @handler("+CPIN", pin_free=True)
    def _cmd_cpin(self, cmd: Command) -> None:
        """TS 27.007 §8.3 with the SIM's retry counters (ETSI TS 102 221 §9.4):
        3 wrong PINs block the PIN (PUK needed), 10 wrong PUKs the SIM for good."""
        state = self.sim_state
        if cmd.form == TEST:
            return
        if state in ("absent", "busy", "blocked"):
            err = self._sim_error(cmd.name)
            assert err is not None
            raise err
        if cmd.form == READ:
            self._info(
                {"ready": "+CPIN: READY", "pin": "+CPIN: SIM PIN"}.get(state, "+CPIN: SIM PUK")
            )
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 2)
            if state == "ready":
                raise _Cme(CmeErrorCode.OPERATION_NOT_ALLOWED)
            if state == "puk":
                self._enter_puk(args)
                return
            if not self.card.verify_pin(args[0]):
                raise _Cme(CmeErrorCode.INCORRECT_PASSWORD)
            self._after_commit = self._sim_ready
        else:
            raise ValueError("+CPIN needs a PIN")

    def _enter_puk(self, args: list[str | None]) -> None:
        """``+CPIN="<puk>","<newpin>"``: unblock with the PUK, set a new PIN."""
        if len(args) < 2 or args[1] is None:
            raise _Cme(CmeErrorCode.SIM_PUK_REQUIRED)
        new_pin = args[1]
        if not (new_pin.isdigit() and 4 <= len(new_pin) <= 8):
            raise _Cme(CmeErrorCode.INCORRECT_PARAMETERS)  # PIN: 4-8 digits
        if not self.card.unblock(args[0], new_pin):
            raise _Cme(CmeErrorCode.INCORRECT_PASSWORD)
        self._after_commit = self._sim_ready

    @handler("+CMEE", pin_free=True)
    def _cmd_cmee(self, cmd: Command) -> None:
        if not self.profile.cmee_supported:
            raise _Plain()
        self._setting(cmd, "cmee", 2)

    @handler("+CCLK", pin_free=True)
    def _cmd_cclk(self, cmd: Command) -> None:
        """TS 27.007 §8.15: ``+CCLK: "yy/MM/dd,hh:mm:ss±zz"`` (zz quarter hours)."""
        if cmd.form == READ:
            self._info(f'+CCLK: "{_codec.scts_text(self.module_clock())}"')
        elif cmd.form == TEST:
            return
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            if a is None or not cmd.quoted(0):
                raise ValueError("time is a string")
            when = _parse_cclk(a)
            zone = when.utcoffset() or timedelta(0)
            self.clock_tz_quarters = int(zone // timedelta(minutes=15))
            self._cclk_skew = when - self.now()
        else:
            raise ValueError("no exec form")

    def module_clock(self) -> datetime:
        """What +CCLK? shows: the simulator's clock (plus what +CCLK= set) in the
        module's time zone."""
        tz = timezone(timedelta(minutes=15 * self.clock_tz_quarters))
        return (self.now() + self._cclk_skew).astimezone(tz)

    @handler("+CSQ", pin_free=True)
    def _cmd_csq(self, cmd: Command) -> None:
        if cmd.form == TEST:
            self._info("+CSQ: (0-31,99),(0-7,99)")
        elif cmd.form == EXEC:
            if self._registered:
                self._info(f"+CSQ: {self.network.rssi},{self.network.ber}")
            else:
                self._info("+CSQ: 99,99")
        else:
            raise ValueError("exec only")

    def _reg_cmd(self, cmd: Command, attr: str) -> None:
        name = cmd.name
        if cmd.form == TEST:
            self._info(f"{name}: (0-2)")
        elif cmd.form == READ:
            n = getattr(self, attr)
            suffix = self._loc_suffix() if n == 2 else ""
            self._info(f"{name}: {n},{self._reg_stat()}{suffix}")
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            setattr(self, attr, self._int(a, 0, 2, 0))
        else:
            setattr(self, attr, 0)

    @handler("+CREG", pin_free=True)
    def _cmd_creg(self, cmd: Command) -> None:
        self._reg_cmd(cmd, "creg_n")

    @handler("+CGREG", pin_free=True)
    def _cmd_cgreg(self, cmd: Command) -> None:
        self._reg_cmd(cmd, "cgreg_n")

    @handler("+CEREG", pin_free=True)
    def _cmd_cereg(self, cmd: Command) -> None:
        self._reg_cmd(cmd, "cereg_n")

    @handler("+COPS", pin_free=True)
    def _cmd_cops(self, cmd: Command) -> None:
        p = self.profile
        if cmd.form == READ:
            if self._registered:
                self._info(f'+COPS: {self.cops_mode},0,"{p.operator}",{p.act}')
            else:
                self._info(f"+COPS: {self.cops_mode}")
        elif cmd.form == TEST:
            self._info(
                f'+COPS: (2,"{p.operator}","{p.operator}","{p.operator_numeric}",{p.act}),'
                ",(0-4),(0-2)"
            )
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 4)
            mode = self._int(args[0], 0, 4)
            if mode != 3:  # 3 only sets the <format> of the read answer
                self.cops_mode = 2 if mode == 2 else 0
            self._update_registration()
        else:
            raise ValueError("no exec form")

    @handler("+CFUN", pin_free=True)
    def _cmd_cfun(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info(f"+CFUN: {self.cfun}")
        elif cmd.form == TEST:
            self._info("+CFUN: (0,1,4),(0,1)")
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 2)
            fun = self._int(args[0], 0, 4)
            if fun not in (0, 1, 4):
                raise ValueError("fun")
            rst = self._int(args[1], 0, 1, 0) if len(args) > 1 else 0
            if rst == 1:
                if fun != 1:
                    raise ValueError("reset needs fun 1")
                self._after_commit = self._reboot
                return
            self.cfun = fun
            self._update_registration()
        else:
            raise ValueError("no exec form")

    # ------------------------------------------------- the SIM card (public)
    @property
    def pin(self) -> str | None:
        """The SIM's PIN (None: PIN check disabled); a PUK unblock replaces it."""
        return self.card.pin

    @pin.setter
    def pin(self, value: str | None) -> None:
        self.card.pin = value

    @property
    def puk(self) -> str:
        """The SIM's PUK."""
        return self.card.puk

    @puk.setter
    def puk(self, value: str) -> None:
        self.card.puk = value

    @property
    def pin_attempts_left(self) -> int:
        """PIN retries left on the SIM (3 after a correct entry)."""
        return self.card.pin_attempts_left

    @pin_attempts_left.setter
    def pin_attempts_left(self, value: int) -> None:
        self.card.pin_attempts_left = value

    @property
    def puk_attempts_left(self) -> int:
        """PUK retries left on the SIM (10 after a correct entry)."""
        return self.card.puk_attempts_left

    @puk_attempts_left.setter
    def puk_attempts_left(self, value: int) -> None:
        self.card.puk_attempts_left = value

    @property
    def sim_inserted(self) -> bool:
        """False: no SIM in the holder."""
        return self.card.inserted

    @sim_inserted.setter
    def sim_inserted(self, value: bool) -> None:
        self.card.inserted = value

    @property
    def sim_busy_time(self) -> float:
        """Seconds the SIM stays busy (+CME ERROR: 14) after each boot."""
        return self.card.busy_time

    @sim_busy_time.setter
    def sim_busy_time(self, value: float) -> None:
        self.card.busy_time = value


def _parse_cclk(text: str) -> datetime:
    """ "yy/MM/dd,hh:mm:ss±zz" (TS 27.007 §8.15) -> an aware datetime; ValueError."""
    body, sign, zz = text[:-3], text[-3:-2], text[-2:]
    if sign not in "+-" or not sign or not zz.isdigit() or int(zz) > 48:
        raise ValueError("time zone")
    local = datetime.strptime(body, "%y/%m/%d,%H:%M:%S")
    quarters = int(zz) * (1 if sign == "+" else -1)
    return local.replace(tzinfo=timezone(timedelta(minutes=15 * quarters)))
