"""Error codes and typed exceptions of the modem layer.

Two spec tables as enums:

* :class:`CmeErrorCode` - ``+CME ERROR: <err>``, 3GPP TS 27.007 §9.2.1 (general)
  and §9.2.2 (GPRS / packet domain).
* :class:`CmsErrorCode` - ``+CMS ERROR: <err>``, 3GPP TS 27.005 §3.2.5: values
  0..127 are RP causes of TS 24.011 (Annex E-2), 128..255 are TP-FCS values of
  TS 23.040 §9.2.3.22, 300..500 are the ME/TA errors defined by TS 27.005.

Each member's :attr:`text` is the spec's verbose text (what a module prints
after ``AT+CMEE=2``); :meth:`from_number` and :meth:`from_text` look codes up;
a number the table does not know is kept as a plain ``int`` (never a crash).

Who is at fault
---------------

Every exception here carries :attr:`ModemError.fault`:

* :attr:`Fault.CALLER` - our own misuse: a command with a CR in it, sending on
  a closed client, a PDU too long for the line. A bug in the caller; do not
  retry, fix the code. (:class:`UsageError`.)
* :attr:`Fault.DEVICE` - the module or the network did something expected in
  the field: it answered with an error (:class:`CmeError`, :class:`CmsError`,
  :class:`CommandFailed`), it did not answer (:class:`CommandTimeout`), it went
  away (:class:`ModemDisconnected`), or it sent bytes we cannot make sense of
  (:class:`ProtocolError`). Handled, logged, retried or recovered from.
* :attr:`Fault.OPERATOR` - the installation needs a person: no SIM, a SIM that
  failed, a SIM asking for a PIN nobody configured, a configured PIN the SIM
  refused, a SIM blocked behind its PUK (:class:`SimProblem`). Never retried
  automatically: a wrong PIN entered again counts down the SIM's attempts
  (TS 31.102: three, then the PUK). Reported once, loudly.
* :class:`NotRegistered` is a device fault too: no network within the wait.
"""

from __future__ import annotations

import enum
import re
from typing import ClassVar, Self

__all__ = [
    "ClientClosed",
    "CmeError",
    "CmeErrorCode",
    "CmsError",
    "CmsErrorCode",
    "CommandFailed",
    "CommandTimeout",
    "Fault",
    "ModemDisconnected",
    "ModemError",
    "ModemRebooted",
    "NotRegistered",
    "ProtocolError",
    "SimProblem",
    "SimProblemKind",
    "UsageError",
    "is_number",
    "normalise_error_text",
]


def is_number(text: str) -> bool:
    """True for a non-empty run of ASCII digits (``str.isdigit`` accepts '²')."""
    return text.isascii() and text.isdigit()


def normalise_error_text(text: str) -> str:
    """Fold a verbose error text for lookup: case, spaces, quotes, punctuation.

    Modules differ in details (``"SIM PIN required"`` vs ``"sim pin required"``,
    ``"network not allowed - emergency calls only"`` vs ``"...allowed-emergency..."``).
    """
    text = text.strip().strip('"').lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return text.strip()


class _CodeEnum(enum.IntEnum):
    """IntEnum whose members carry the spec's verbose text."""

    _text_: str

    def __new__(cls, value: int, text: str) -> _CodeEnum:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj._text_ = text
        return obj

    @property
    def text(self) -> str:
        """The verbose text of the spec table (as printed after ``AT+CMEE=2``)."""
        return self._text_

    @classmethod
    def from_number(cls, number: int) -> Self | int:
        """The member for ``number``, or ``number`` itself when the table lacks it."""
        member = cls._value2member_map_.get(number)
        return member if isinstance(member, cls) else number

    @classmethod
    def from_text(cls, text: str) -> Self | None:
        """The member whose verbose text matches ``text`` (folded), or None.

        ``(U)SIM`` in the spec's text also matches a plain ``SIM``.
        """
        table = _TEXT_INDEX.get(cls)
        if table is None:
            table = {}
            for m in cls:
                table[normalise_error_text(m.text)] = m
                table.setdefault(normalise_error_text(m.text.replace("(U)", "")), m)
            _TEXT_INDEX[cls] = table
        found = table.get(normalise_error_text(text))
        return found if isinstance(found, cls) else None

    @classmethod
    def parse(cls, payload: str) -> Self | int | None:
        """Decode the part after ``+CME ERROR:`` / ``+CMS ERROR:``: a number or a text.

        Returns the member, the raw int for an unknown number, or None for an
        unknown text.
        """
        payload = payload.strip()
        if is_number(payload) and len(payload) <= 6:
            return cls.from_number(int(payload))
        return cls.from_text(payload)


_TEXT_INDEX: dict[type[_CodeEnum], dict[str, _CodeEnum]] = {}


class CmeErrorCode(_CodeEnum):
    """``+CME ERROR`` values, 3GPP TS 27.007 §9.2.1 and §9.2.2."""

    PHONE_FAILURE = 0, "phone failure"
    NO_CONNECTION_TO_PHONE = 1, "no connection to phone"
    PHONE_ADAPTOR_LINK_RESERVED = 2, "phone-adaptor link reserved"
    OPERATION_NOT_ALLOWED = 3, "operation not allowed"
    OPERATION_NOT_SUPPORTED = 4, "operation not supported"
    PH_SIM_PIN_REQUIRED = 5, "PH-SIM PIN required"
    PH_FSIM_PIN_REQUIRED = 6, "PH-FSIM PIN required"
    PH_FSIM_PUK_REQUIRED = 7, "PH-FSIM PUK required"
    SIM_NOT_INSERTED = 10, "SIM not inserted"
    SIM_PIN_REQUIRED = 11, "SIM PIN required"
    SIM_PUK_REQUIRED = 12, "SIM PUK required"
    SIM_FAILURE = 13, "SIM failure"
    SIM_BUSY = 14, "SIM busy"
    SIM_WRONG = 15, "SIM wrong"
    INCORRECT_PASSWORD = 16, "incorrect password"
    SIM_PIN2_REQUIRED = 17, "SIM PIN2 required"
    SIM_PUK2_REQUIRED = 18, "SIM PUK2 required"
    MEMORY_FULL = 20, "memory full"
    INVALID_INDEX = 21, "invalid index"
    NOT_FOUND = 22, "not found"
    MEMORY_FAILURE = 23, "memory failure"
    TEXT_STRING_TOO_LONG = 24, "text string too long"
    INVALID_CHARACTERS_IN_TEXT_STRING = 25, "invalid characters in text string"
    DIAL_STRING_TOO_LONG = 26, "dial string too long"
    INVALID_CHARACTERS_IN_DIAL_STRING = 27, "invalid characters in dial string"
    NO_NETWORK_SERVICE = 30, "no network service"
    NETWORK_TIMEOUT = 31, "network timeout"
    NETWORK_NOT_ALLOWED_EMERGENCY_ONLY = 32, "network not allowed - emergency calls only"
    NETWORK_PERSONALISATION_PIN_REQUIRED = 40, "network personalization PIN required"
    NETWORK_PERSONALISATION_PUK_REQUIRED = 41, "network personalization PUK required"
    NETWORK_SUBSET_PERSONALISATION_PIN_REQUIRED = (
        42,
        "network subset personalization PIN required",
    )
    NETWORK_SUBSET_PERSONALISATION_PUK_REQUIRED = (
        43,
        "network subset personalization PUK required",
    )
    SERVICE_PROVIDER_PERSONALISATION_PIN_REQUIRED = (
        44,
        "service provider personalization PIN required",
    )
    SERVICE_PROVIDER_PERSONALISATION_PUK_REQUIRED = (
        45,
        "service provider personalization PUK required",
    )
    CORPORATE_PERSONALISATION_PIN_REQUIRED = 46, "corporate personalization PIN required"
    CORPORATE_PERSONALISATION_PUK_REQUIRED = 47, "corporate personalization PUK required"
    HIDDEN_KEY_REQUIRED = 48, "hidden key required"
    EAP_METHOD_NOT_SUPPORTED = 49, "EAP method not supported"
    INCORRECT_PARAMETERS = 50, "incorrect parameters"
    COMMAND_DISABLED = 51, "command implemented but currently disabled"
    COMMAND_ABORTED_BY_USER = 52, "command aborted by user"
    NOT_ATTACHED_MT_RESTRICTED = (
        53,
        "not attached to network due to MT functionality restrictions",
    )
    MODEM_NOT_ALLOWED_EMERGENCY_ONLY = (
        54,
        "modem not allowed - MT restricted to emergency calls only",
    )
    NOT_ALLOWED_MT_RESTRICTED = (
        55,
        "operation not allowed because of MT functionality restrictions",
    )
    FIXED_DIAL_NUMBER_ONLY = 56, "fixed dial number only allowed"
    TEMPORARILY_OUT_OF_SERVICE = 57, "temporarily out of service due to other MT usage"
    LANGUAGE_NOT_SUPPORTED = 58, "language/alphabet not supported"
    UNEXPECTED_DATA_VALUE = 59, "unexpected data value"
    SYSTEM_FAILURE = 60, "system failure"
    DATA_MISSING = 61, "data missing"
    CALL_BARRED = 62, "call barred"
    MWI_SUBSCRIPTION_FAILURE = 63, "message waiting indication subscription failure"
    UNKNOWN = 100, "unknown"
    # §9.2.2 packet domain (the EMM/GMM cause in brackets, TS 24.008 / 24.301).
    ILLEGAL_MS = 103, "Illegal MS"
    ILLEGAL_ME = 106, "Illegal ME"
    GPRS_NOT_ALLOWED = 107, "GPRS services not allowed"
    GPRS_AND_NON_GPRS_NOT_ALLOWED = 108, "GPRS services and non-GPRS services not allowed"
    PLMN_NOT_ALLOWED = 111, "PLMN not allowed"
    LOCATION_AREA_NOT_ALLOWED = 112, "Location area not allowed"
    ROAMING_NOT_ALLOWED = 113, "Roaming not allowed in this location area"
    GPRS_NOT_ALLOWED_IN_PLMN = 114, "GPRS services not allowed in this PLMN"
    NO_SUITABLE_CELLS = 115, "No Suitable Cells In Location Area"
    CONGESTION = 122, "Congestion"
    INSUFFICIENT_RESOURCES = 125, "Insufficient resources"
    MISSING_OR_UNKNOWN_APN = 126, "Missing or unknown APN"
    UNKNOWN_PDP_ADDRESS_OR_TYPE = 127, "Unknown PDP address or PDP type"
    USER_AUTHENTICATION_FAILED = 128, "User authentication failed"
    ACTIVATION_REJECTED_BY_GATEWAY = 129, "Activation rejected by GGSN, Serving GW or PDN GW"
    ACTIVATION_REJECTED_UNSPECIFIED = 130, "Activation rejected, unspecified"
    SERVICE_OPTION_NOT_SUPPORTED = 131, "Service option not supported"
    SERVICE_OPTION_NOT_SUBSCRIBED = 132, "Requested service option not subscribed"
    SERVICE_OPTION_OUT_OF_ORDER = 133, "Service option temporarily out of order"
    NSAPI_ALREADY_USED = 134, "NSAPI already used"
    FEATURE_NOT_SUPPORTED = 140, "Feature not supported"
    SEMANTIC_ERROR_IN_TFT = 141, "Semantic error in the TFT operation"
    SYNTACTICAL_ERROR_IN_TFT = 142, "Syntactical error in the TFT operation"
    UNKNOWN_PDP_CONTEXT = 143, "Unknown PDP context"
    SEMANTIC_ERROR_IN_PACKET_FILTER = 144, "Semantic errors in packet filter(s)"
    SYNTACTICAL_ERROR_IN_PACKET_FILTER = 145, "Syntactical errors in packet filter(s)"
    PDP_CONTEXT_WITHOUT_TFT_ACTIVE = 146, "PDP context without TFT already activated"
    UNSPECIFIED_GPRS_ERROR = 148, "Unspecified GPRS error"
    PDP_AUTHENTICATION_FAILURE = 149, "PDP authentication failure"
    INVALID_MOBILE_CLASS = 150, "Invalid mobile class"


class CmsErrorCode(_CodeEnum):
    """``+CMS ERROR`` values, 3GPP TS 27.005 §3.2.5.

    0..127: RP-Cause, TS 24.011 Annex E-2 (Table 8.4). 128..255: TP-FCS,
    TS 23.040 §9.2.3.22. 300..500: ME/TA errors of TS 27.005 itself.
    """

    UNASSIGNED_NUMBER = 1, "Unassigned (unallocated) number"
    OPERATOR_DETERMINED_BARRING = 8, "Operator determined barring"
    CALL_BARRED = 10, "Call barred"
    SHORT_MESSAGE_TRANSFER_REJECTED = 21, "Short message transfer rejected"
    MEMORY_CAPACITY_EXCEEDED_RP = 22, "Memory capacity exceeded"
    DESTINATION_OUT_OF_SERVICE = 27, "Destination out of service"
    UNIDENTIFIED_SUBSCRIBER = 28, "Unidentified subscriber"
    FACILITY_REJECTED = 29, "Facility rejected"
    UNKNOWN_SUBSCRIBER = 30, "Unknown subscriber"
    NETWORK_OUT_OF_ORDER = 38, "Network out of order"
    TEMPORARY_FAILURE = 41, "Temporary failure"
    CONGESTION = 42, "Congestion"
    RESOURCES_UNAVAILABLE = 47, "Resources unavailable, unspecified"
    REQUESTED_FACILITY_NOT_SUBSCRIBED = 50, "Requested facility not subscribed"
    REQUESTED_FACILITY_NOT_IMPLEMENTED = 69, "Requested facility not implemented"
    INVALID_SM_TRANSFER_REFERENCE = 81, "Invalid short message transfer reference value"
    INVALID_MESSAGE = 95, "Invalid message, unspecified"
    INVALID_MANDATORY_INFORMATION = 96, "Invalid mandatory information"
    MESSAGE_TYPE_NOT_IMPLEMENTED = 97, "Message type non-existent or not implemented"
    MESSAGE_NOT_COMPATIBLE = 98, "Message not compatible with short message protocol state"
    INFORMATION_ELEMENT_NOT_IMPLEMENTED = (
        99,
        "Information element non-existent or not implemented",
    )
    PROTOCOL_ERROR = 111, "Protocol error, unspecified"
    INTERWORKING_UNSPECIFIED = 127, "Interworking, unspecified"
    # TP-FCS, TS 23.040 §9.2.3.22
    TELEMATIC_INTERWORKING_NOT_SUPPORTED = 128, "Telematic interworking not supported"
    SM_TYPE_0_NOT_SUPPORTED = 129, "Short message Type 0 not supported"
    CANNOT_REPLACE_SM = 130, "Cannot replace short message"
    UNSPECIFIED_TP_PID_ERROR = 143, "Unspecified TP-PID error"
    DCS_NOT_SUPPORTED = 144, "Data coding scheme (alphabet) not supported"
    MESSAGE_CLASS_NOT_SUPPORTED = 145, "Message class not supported"
    UNSPECIFIED_TP_DCS_ERROR = 159, "Unspecified TP-DCS error"
    COMMAND_CANNOT_BE_ACTIONED = 160, "Command cannot be actioned"
    COMMAND_UNSUPPORTED = 161, "Command unsupported"
    UNSPECIFIED_TP_COMMAND_ERROR = 175, "Unspecified TP-Command error"
    TPDU_NOT_SUPPORTED = 176, "TPDU not supported"
    SC_BUSY = 192, "SC busy"
    NO_SC_SUBSCRIPTION = 193, "No SC subscription"
    SC_SYSTEM_FAILURE = 194, "SC system failure"
    INVALID_SME_ADDRESS = 195, "Invalid SME address"
    DESTINATION_SME_BARRED = 196, "Destination SME barred"
    SM_REJECTED_DUPLICATE = 197, "SM Rejected-Duplicate SM"
    TP_VPF_NOT_SUPPORTED = 198, "TP-VPF not supported"
    TP_VP_NOT_SUPPORTED = 199, "TP-VP not supported"
    SIM_SMS_STORAGE_FULL = 208, "(U)SIM SMS storage full"
    NO_SMS_STORAGE_IN_SIM = 209, "No SMS storage capability in (U)SIM"
    ERROR_IN_MS = 210, "Error in MS"
    MEMORY_CAPACITY_EXCEEDED = 211, "Memory Capacity Exceeded"
    SIM_TOOLKIT_BUSY = 212, "(U)SIM Application Toolkit Busy"
    SIM_DATA_DOWNLOAD_ERROR = 213, "(U)SIM data download error"
    UNSPECIFIED_ERROR_CAUSE = 255, "Unspecified error cause"
    # ME/TA errors, TS 27.005 §3.2.5
    ME_FAILURE = 300, "ME failure"
    SMS_SERVICE_RESERVED = 301, "SMS service of ME reserved"
    OPERATION_NOT_ALLOWED = 302, "operation not allowed"
    OPERATION_NOT_SUPPORTED = 303, "operation not supported"
    INVALID_PDU_MODE_PARAMETER = 304, "invalid PDU mode parameter"
    INVALID_TEXT_MODE_PARAMETER = 305, "invalid text mode parameter"
    SIM_NOT_INSERTED = 310, "(U)SIM not inserted"
    SIM_PIN_REQUIRED = 311, "(U)SIM PIN required"
    PH_SIM_PIN_REQUIRED = 312, "PH-(U)SIM PIN required"
    SIM_FAILURE = 313, "(U)SIM failure"
    SIM_BUSY = 314, "(U)SIM busy"
    SIM_WRONG = 315, "(U)SIM wrong"
    SIM_PUK_REQUIRED = 316, "(U)SIM PUK required"
    SIM_PIN2_REQUIRED = 317, "(U)SIM PIN2 required"
    SIM_PUK2_REQUIRED = 318, "(U)SIM PUK2 required"
    MEMORY_FAILURE = 320, "memory failure"
    INVALID_MEMORY_INDEX = 321, "invalid memory index"
    MEMORY_FULL = 322, "memory full"
    SMSC_ADDRESS_UNKNOWN = 330, "SMSC address unknown"
    NO_NETWORK_SERVICE = 331, "no network service"
    NETWORK_TIMEOUT = 332, "network timeout"
    NO_CNMA_EXPECTED = 340, "no +CNMA acknowledgement expected"
    UNKNOWN_ERROR = 500, "unknown error"


#: CMS codes worth retrying: the network or SC is busy or briefly absent, or the
#: ME is momentarily busy. Everything else (bad address, bad PDU, barred,
#: misuse) is permanent: retrying sends the same bad request again.
TRANSIENT_CMS: frozenset[int] = frozenset(
    {
        CmsErrorCode.DESTINATION_OUT_OF_SERVICE,
        CmsErrorCode.NETWORK_OUT_OF_ORDER,
        CmsErrorCode.TEMPORARY_FAILURE,
        CmsErrorCode.CONGESTION,
        CmsErrorCode.RESOURCES_UNAVAILABLE,
        CmsErrorCode.MEMORY_CAPACITY_EXCEEDED_RP,
        CmsErrorCode.SC_BUSY,
        CmsErrorCode.SC_SYSTEM_FAILURE,
        CmsErrorCode.SIM_TOOLKIT_BUSY,
        CmsErrorCode.ME_FAILURE,
        CmsErrorCode.SIM_BUSY,
        CmsErrorCode.MEMORY_FAILURE,
        CmsErrorCode.NO_NETWORK_SERVICE,
        CmsErrorCode.NETWORK_TIMEOUT,
        CmsErrorCode.UNKNOWN_ERROR,
    }
)

#: CME codes worth retrying (module or SIM busy, network momentarily absent).
TRANSIENT_CME: frozenset[int] = frozenset(
    {
        CmeErrorCode.SIM_BUSY,
        CmeErrorCode.NO_NETWORK_SERVICE,
        CmeErrorCode.NETWORK_TIMEOUT,
        CmeErrorCode.TEMPORARILY_OUT_OF_SERVICE,
        CmeErrorCode.MEMORY_FAILURE,
        CmeErrorCode.UNKNOWN,
        CmeErrorCode.CONGESTION,
    }
)


class Fault(enum.Enum):
    """Who is at fault for an error (see the module docstring)."""

    CALLER = "caller"  #: our misuse: a bug, do not retry
    DEVICE = "device"  #: the module's or the network's behaviour: expected, handled
    OPERATOR = "operator"  #: the SIM or its configuration needs a person: never retried


class ModemError(Exception):
    """Base of every error the modem layer raises on purpose."""

    fault: Fault = Fault.DEVICE
    #: Set by the client when the error ended a command after its prompt data
    #: (a ``+CMGS`` PDU) was written: the module may have acted on it, so the
    #: outcome is unknown and the command must not be repeated blindly.
    data_sent: bool = False

    @property
    def transient(self) -> bool:
        """True when retrying the same request later may succeed."""
        return False


class UsageError(ModemError, ValueError):
    """The caller asked for something impossible (a bug on our side)."""

    fault = Fault.CALLER


class CommandFailed(ModemError):
    """The module ended a command with a failure result code.

    ``result`` is the final result as received (``"ERROR"``, ``"NO CARRIER"``...);
    ``command`` the command line that failed, when known.
    """

    def __init__(self, result: str, command: str | None = None) -> None:
        self.result = result
        self.command = command
        super().__init__(f"{command!r}: {result}" if command else result)


class _CodedError(CommandFailed):
    """A final result code with an error number: ``<prefix> ERROR: <err>``.

    ``code`` is a member of the subclass's table, a raw int the table lacks,
    or None when the module sent a verbose text we do not know; ``text`` is
    the meaning. Subclasses name their table, prefix and transient codes.
    """

    _table: ClassVar[type[CmeErrorCode] | type[CmsErrorCode]]
    _prefix: ClassVar[str]
    _transient: ClassVar[frozenset[int]]

    def __init__(
        self, code: int | None, text: str | None = None, command: str | None = None
    ) -> None:
        if isinstance(code, int) and not isinstance(code, self._table):
            code = self._table.from_number(code)
        self.code = code
        if text is None:
            text = code.text if isinstance(code, self._table) else "unknown error code"
        self.text = text
        shown = code if code is not None else "?"
        super().__init__(f"{self._prefix} ERROR: {shown} ({text})", command)

    @property
    def transient(self) -> bool:
        return self.code in self._transient


class CmeError(_CodedError):
    """``+CME ERROR: <err>`` (TS 27.007 §9.2), see :class:`CmeErrorCode`."""

    _table = CmeErrorCode
    _prefix = "+CME"
    _transient = TRANSIENT_CME
    code: CmeErrorCode | int | None


class CmsError(_CodedError):
    """``+CMS ERROR: <err>`` (TS 27.005 §3.2.5), see :class:`CmsErrorCode`.

    :attr:`transient` is True for congestion, temporary failure, SC busy, no
    network service, network timeout, SIM busy, ME failure and the catch-all
    500; False for invalid destination, invalid PDU, operation not allowed,
    barring and every other code (including unknown numbers).
    """

    _table = CmsErrorCode
    _prefix = "+CMS"
    _transient = TRANSIENT_CMS
    code: CmsErrorCode | int | None


class CommandTimeout(ModemError):
    """No final result code arrived within the command's timeout."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command = command
        self.timeout = timeout
        super().__init__(f"{command!r}: no final result within {timeout:g} s")

    @property
    def transient(self) -> bool:
        return True


class ModemDisconnected(ModemError, ConnectionError):
    """The port went away (USB re-enumeration, socket closed, connection lost)."""

    @property
    def transient(self) -> bool:
        return True


class ModemRebooted(ModemError):
    """The module restarted (``RDY``...) while a command was in flight: it is lost."""

    @property
    def transient(self) -> bool:
        return True


class ClientClosed(ModemDisconnected):
    """The client was closed by its owner; pending commands fail with this."""

    fault = Fault.CALLER

    @property
    def transient(self) -> bool:
        return False


class ProtocolError(ModemError, ValueError):
    """The module sent something the AT grammar or a response parser rejects.

    ``line`` is the offending text (truncated), when there is one.
    """

    def __init__(self, message: str, line: str | bytes | None = None) -> None:
        self.line = line
        if line is not None:
            shown = line if len(line) <= 80 else line[:80]
            message = f"{message}: {shown!r}"
        super().__init__(message)


class NotRegistered(ModemError, TimeoutError):
    """No network registration (TS 27.007 §7.2 ``<stat>`` 1 or 5) within the wait.

    A device fault and transient: coverage may come back. Also a
    :class:`TimeoutError`, for callers that wait with their own deadline.
    """

    def __init__(self, waited: float, state: str = "") -> None:
        self.waited = waited
        self.state = state
        tail = f" (last state: {state})" if state else ""
        super().__init__(f"not registered within {waited:g} s{tail}")

    @property
    def transient(self) -> bool:
        return True


class SimProblemKind(enum.Enum):
    """What the SIM needs from a person (TS 27.007 §8.3 ``+CPIN``, §9.2.1 codes)."""

    NOT_INSERTED = "SIM not inserted"
    FAILURE = "SIM failure"
    PIN_REQUIRED = "SIM PIN required and no PIN configured"
    PIN_REJECTED = "the configured SIM PIN was refused"
    PUK_REQUIRED = "SIM PUK required (the PIN was refused too often)"
    OTHER_LOCK = "SIM or device lock needs a code"
    #: ``+CPIN?`` (mandatory, TS 27.007 §8.3) keeps answering a plain ``ERROR``:
    #: on a module without ``+CMEE`` codes, a missing or unreadable SIM
    UNREADABLE = "the SIM cannot be read (+CPIN? answers ERROR)"


#: +CME ERROR codes (TS 27.007 §9.2.1) that are a SIM problem for a person.
SIM_PROBLEM_CME: dict[int, SimProblemKind] = {
    CmeErrorCode.PH_SIM_PIN_REQUIRED: SimProblemKind.OTHER_LOCK,
    CmeErrorCode.PH_FSIM_PIN_REQUIRED: SimProblemKind.OTHER_LOCK,
    CmeErrorCode.PH_FSIM_PUK_REQUIRED: SimProblemKind.OTHER_LOCK,
    CmeErrorCode.SIM_NOT_INSERTED: SimProblemKind.NOT_INSERTED,
    CmeErrorCode.SIM_PIN_REQUIRED: SimProblemKind.PIN_REQUIRED,
    CmeErrorCode.SIM_PUK_REQUIRED: SimProblemKind.PUK_REQUIRED,
    CmeErrorCode.SIM_FAILURE: SimProblemKind.FAILURE,
    CmeErrorCode.SIM_WRONG: SimProblemKind.FAILURE,
    CmeErrorCode.INCORRECT_PASSWORD: SimProblemKind.PIN_REJECTED,
    CmeErrorCode.SIM_PUK2_REQUIRED: SimProblemKind.OTHER_LOCK,
}

#: +CMS ERROR codes (TS 27.005 §3.2.5) that are the same SIM problems.
SIM_PROBLEM_CMS: dict[int, SimProblemKind] = {
    CmsErrorCode.SIM_NOT_INSERTED: SimProblemKind.NOT_INSERTED,
    CmsErrorCode.SIM_PIN_REQUIRED: SimProblemKind.PIN_REQUIRED,
    CmsErrorCode.PH_SIM_PIN_REQUIRED: SimProblemKind.OTHER_LOCK,
    CmsErrorCode.SIM_FAILURE: SimProblemKind.FAILURE,
    CmsErrorCode.SIM_WRONG: SimProblemKind.FAILURE,
    CmsErrorCode.SIM_PUK_REQUIRED: SimProblemKind.PUK_REQUIRED,
}


class SimProblem(ModemError):
    """The SIM needs a person (:attr:`Fault.OPERATOR`); see :class:`SimProblemKind`.

    The session never retries these by itself: it keeps the port open, keeps
    answering status queries and reports the problem in
    :attr:`modem.session.Session.sim_problem` until the module reboots, the SIM
    reports a change (``+CPIN:`` URC) or the application gives a new
    configuration. ``cause`` is the module's error, when there was one.
    """

    fault = Fault.OPERATOR

    def __init__(self, kind: SimProblemKind, cause: ModemError | None = None) -> None:
        self.kind = kind
        self.cause = cause
        tail = f" ({cause})" if cause is not None else ""
        super().__init__(f"{kind.value}{tail}: the SIM needs a person; not retried")

    @classmethod
    def from_error(cls, exc: ModemError) -> SimProblem | None:
        """The SIM problem a ``+CME``/``+CMS ERROR`` stands for, or None."""
        kind: SimProblemKind | None = None
        if isinstance(exc, CmeError) and isinstance(exc.code, int):
            kind = SIM_PROBLEM_CME.get(exc.code)
        elif isinstance(exc, CmsError) and isinstance(exc.code, int):
            kind = SIM_PROBLEM_CMS.get(exc.code)
        return cls(kind, exc) if kind is not None else None
