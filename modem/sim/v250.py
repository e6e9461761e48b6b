"""V.250 for the simulated module: basic commands, S-parameters, result codes.

ITU-T V.250 as the module answers it: the basic commands E (§6.2.4), Q
(§6.2.5), V (§6.2.6), Z (§6.1.1), &F (§6.1.2), I (§6.1.3), those accepted
and ignored (H §6.3.6, X §6.2.7, &C §6.2.8, &D §6.2.9, and &W), the
S-parameters (§5.3.2: S3, S4, S5 of §6.2.1-§6.2.3 kept, others read 0), and the
shape of every answer: information responses and final result codes in
verbose (``<CR><LF>OK<CR><LF>``) or numeric form (V0, ``0<CR>``), none with
Q1 (§5.7, §6.2.5-§6.2.6). Errors are ``ERROR`` or, per +CMEE (TS 27.007
§9.1), ``+CME ERROR: <n>`` / ``+CMS ERROR: <n>`` (TS 27.005 §3.2.5), numeric
or verbose from :mod:`modem.errors`. :meth:`V250._dispatch` runs one command
through the registry (:mod:`.registry`) and turns a handler's ValueError into
the command's parameter error.
"""

from __future__ import annotations

from typing import Any

from modem.errors import CmeErrorCode, CmsErrorCode

from . import codec as _codec
from .base import ModemBase
from .cmdline import READ, SET, TEST, Command, CommandLineError
from .registry import HANDLERS, SREG, command_key, handler

__all__ = ["V250"]


class _ErrorResult(Exception):
    pass


class _Cme(_ErrorResult):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Cms(_ErrorResult):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Plain(_ErrorResult):
    """Plain ERROR whatever +CMEE says (V.250 syntax errors)."""


class V250(ModemBase):
    """V.250 result formatting, argument helpers, dispatch and basic commands."""

    def _crlf(self) -> bytes:
        return bytes([self.s3, self.s4])

    def _fmt_info(self, line: bytes) -> bytes:
        if self.verbose:
            return self._crlf() + line + self._crlf()
        return line + self._crlf()

    def _fmt_final(self, text: str, number: int) -> bytes:
        if self.quiet:
            return b""
        if self.verbose:
            return self._crlf() + text.encode() + self._crlf()
        return str(number).encode() + bytes([self.s3])

    def _fmt_error(self, err: _ErrorResult) -> bytes:
        if self.quiet:
            return b""
        if isinstance(err, _Plain) or self.cmee == 0 or not self.profile.cmee_supported:
            return self._fmt_final("ERROR", 4)
        if isinstance(err, _Cme):
            prefix = "+CME ERROR: "
            member: Any = CmeErrorCode.from_number(err.code)
        else:
            assert isinstance(err, _Cms)
            prefix = "+CMS ERROR: "
            member = CmsErrorCode.from_number(err.code)
        code_num = err.code
        if self.cmee == 2 and isinstance(member, CmeErrorCode | CmsErrorCode):
            text = prefix + str(member.text)
        else:
            text = prefix + str(code_num)
        return self._fmt_info(text.encode())

    def _dispatch(self, cmd: Command) -> None:
        """Run one command through its registered handler (:mod:`.registry`):
        unknown +CME ERROR 4, the SIM check unless it is PIN-free, a handler's
        ValueError as the command's parameter error."""
        name = cmd.name
        spec = HANDLERS.get(command_key(name, self.profile.iccid_commands))
        if spec is None:
            raise _Cme(CmeErrorCode.OPERATION_NOT_SUPPORTED)
        pending = self.faults.error_on.get(name)
        if pending:  # the "error-on" fault
            code = pending.pop(0)
            raise _Cms(code) if spec.sms or spec.message else _Cme(code)
        if not spec.pin_free:
            err = self._sim_error(name)
            if err is not None:
                raise err
        try:
            spec.fn(self, cmd)
        except (ValueError, CommandLineError) as exc:
            if isinstance(exc, _codec.PduError):
                raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER) from None
            raise self._bad_param(name) from None

    def _bad_param(self, name: str) -> _ErrorResult:
        spec = HANDLERS.get(name)
        if spec is not None and spec.message:
            return _Cms(
                CmsErrorCode.INVALID_TEXT_MODE_PARAMETER
                if self.cmgf
                else CmsErrorCode.INVALID_PDU_MODE_PARAMETER
            )
        if spec is not None and spec.sms:
            return _Cms(CmsErrorCode.OPERATION_NOT_SUPPORTED)
        if len(name) <= 2:
            return _Plain()
        return _Cme(CmeErrorCode.INCORRECT_PARAMETERS)

    def _info(self, line: str | bytes) -> None:
        self._resp.append(self._fmt_info(line.encode() if isinstance(line, str) else line))

    def _info_lines(self, lines: list[bytes]) -> None:
        """One information response of several lines (V.250 §5.7.1): one header
        and trailer, the lines apart by S3 S4 (no empty line between them, as in
        TS 27.005 +CMGL: "<data>[<CR><LF>+CMGL: ...")."""
        self._resp.append(self._fmt_info(self._crlf().join(lines)))

    @staticmethod
    def _int(arg: str | None, lo: int, hi: int, default: int | None = None) -> int:
        if arg is None:
            if default is None:
                raise ValueError("missing argument")
            return default
        if not arg.isdigit():
            raise ValueError(f"not a number: {arg!r}")
        v = int(arg)
        if not lo <= v <= hi:
            raise ValueError(f"{v} out of range {lo}-{hi}")
        return v

    @staticmethod
    def _need_args(cmd: Command, lo: int, hi: int) -> list[str | None]:
        args = cmd.args()
        if not lo <= len(args) <= hi:
            raise ValueError("wrong number of arguments")
        return args

    def _setting(self, cmd: Command, attr: str, hi: int) -> None:
        """A one-number setting 0..hi (+CMEE, +CMGF, +CSDH): read, test, set;
        the set form without a value and the exec form mean 0."""
        if cmd.form == READ:
            self._info(f"{cmd.name}: {getattr(self, attr)}")
        elif cmd.form == TEST:
            self._info(f"{cmd.name}: (0,1)" if hi == 1 else f"{cmd.name}: (0-{hi})")
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            setattr(self, attr, self._int(a, 0, hi, 0))
        else:
            setattr(self, attr, 0)

    @handler("E", pin_free=True)
    def _cmd_e(self, cmd: Command) -> None:
        echo = self._basic_flag(cmd)
        self.echo = echo and not self.profile.echo_fixed_off

    @handler("V", pin_free=True)
    def _cmd_v(self, cmd: Command) -> None:
        self.verbose = self._basic_flag(cmd)

    @handler("Q", pin_free=True)
    def _cmd_q(self, cmd: Command) -> None:
        self.quiet = self._basic_flag(cmd)

    @staticmethod
    def _basic_flag(cmd: Command) -> bool:
        if cmd.form == READ:
            raise ValueError("no read form")
        v = int(cmd.raw) if cmd.raw else 0
        if v not in (0, 1):
            raise ValueError("0 or 1")
        return v == 1

    @handler("Z", pin_free=True)
    def _cmd_z(self, cmd: Command) -> None:
        if cmd.raw not in ("", "0"):
            raise ValueError("ATZ takes 0")
        self._reset_settings()

    @handler("&F", pin_free=True)
    def _cmd_and_f(self, cmd: Command) -> None:
        if cmd.raw not in ("", "0"):
            raise ValueError("AT&F takes 0")
        self._reset_settings()

    @handler("H", "X", "&W", "&D", "&C", pin_free=True)
    def _cmd_ok(self, cmd: Command) -> None:
        """Accepted and ignored (ATH, ATX, AT&W, AT&D, AT&C)."""

    @handler("I", pin_free=True)
    def _cmd_i(self, cmd: Command) -> None:
        p = self.profile
        lines = [p.manufacturer, p.model, f"Revision: {p.revision}"]
        self._info_lines([line.encode() for line in lines])

    @handler(SREG, pin_free=True)
    def _cmd_sreg(self, cmd: Command) -> None:
        reg = int(cmd.name[1:])
        regs = {3: "s3", 4: "s4", 5: "s5"}
        if cmd.form == READ:
            val = getattr(self, regs[reg]) if reg in regs else 0
            self._info(f"{val:03d}")
        elif cmd.form == SET:
            v = self._int(cmd.raw or None, 0, 127 if reg in regs else 255)
            if reg in regs:
                setattr(self, regs[reg], v)
        elif cmd.form == TEST:
            self._info("(0-127)")
