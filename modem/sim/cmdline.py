"""V.250 command line parsing for the simulated module (ITU-T V.250 §5.2-5.4).

A command line is ``AT`` followed by basic commands (``E0``, ``V1``, ``&F``,
``S3=13``, ``I``), which may follow each other directly, and extended
commands (``+CMGF=0``) separated by ``;``. Each extended command has one of
four forms (§5.4.1): action/execute (``+CSQ``), set (``+CMGF=1``), read
(``+CMGF?``) and test (``+CMGF=?``).
"""

from __future__ import annotations

from dataclasses import dataclass

EXEC, SET, READ, TEST = "exec", "set", "read", "test"

#: Characters of an extended command name after the prefix (V.250 §5.4.1).
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!%-./:_")
_EXT_PREFIXES = "+$^#*"


class CommandLineError(ValueError):
    """The line does not follow V.250 syntax."""


@dataclass(frozen=True)
class Command:
    """One command of a command line."""

    #: Upper-case name: "+CMGF", "E", "&F", "S3", "I".
    name: str
    #: EXEC, SET, READ or TEST.
    form: str
    #: Argument text after "=" (SET), or the digits after a basic command.
    raw: str = ""

    def args(self) -> list[str | None]:
        """Comma-separated arguments: None for an empty one, quoted ones unquoted.

        A quoted argument keeps a leading '"' marker removed; numbers stay as
        text (handlers convert and range-check). Raises CommandLineError on an
        unterminated string.
        """
        if self.form != SET:
            return []
        out: list[str | None] = []
        cur: list[str] = []
        quoted = False
        in_q = False
        for ch in self.raw:
            if in_q:
                if ch == '"':
                    in_q = False
                else:
                    cur.append(ch)
            elif ch == '"':
                in_q = True
                quoted = True
            elif ch == ",":
                out.append(_finish(cur, quoted))
                cur, quoted = [], False
            elif ch != " ":
                cur.append(ch)
        if in_q:
            raise CommandLineError("unterminated string")
        out.append(_finish(cur, quoted))
        return out

    def quoted(self, position: int) -> bool:
        """Whether argument ``position`` was written as a quoted string."""
        parts = _split_raw(self.raw)
        return position < len(parts) and parts[position].strip().startswith('"')


def _finish(cur: list[str], quoted: bool) -> str | None:
    s = "".join(cur)
    if not s and not quoted:
        return None
    return s


def _split_raw(raw: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    in_q = False
    for ch in raw:
        if ch == '"':
            in_q = not in_q
        if ch == "," and not in_q:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_line(body: str) -> list[Command]:
    """Parse what follows ``AT`` on a command line into commands.

    An empty body (plain ``AT``) gives no commands.
    """
    cmds: list[Command] = []
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if ch in " ;":
            i += 1
            continue
        if ch in _EXT_PREFIXES:
            j = i + 1
            while j < n and body[j].upper() in _NAME_CHARS:
                j += 1
            if j == i + 1:
                raise CommandLineError(f"empty command name at {i}")
            name = body[i:j].upper()
            # Argument part runs to an unquoted ';' or end of line.
            k = j
            in_q = False
            while k < n and (in_q or body[k] != ";"):
                if body[k] == '"':
                    in_q = not in_q
                k += 1
            if in_q:
                raise CommandLineError("unterminated string")
            rest = body[j:k].strip()
            if rest == "":
                cmds.append(Command(name, EXEC))
            elif rest == "?":
                cmds.append(Command(name, READ))
            elif rest == "=?":
                cmds.append(Command(name, TEST))
            elif rest.startswith("="):
                cmds.append(Command(name, SET, rest[1:]))
            else:
                raise CommandLineError(f"junk after {name}: {rest!r}")
            i = k + 1
            continue
        # Basic commands: [&]letter, then digits / S-register forms.
        up = ch.upper()
        j = i + 1
        if up == "&":
            if j >= n:
                raise CommandLineError("lone &")
            up = "&" + body[j].upper()
            j += 1
        elif not up.isalpha():
            raise CommandLineError(f"unexpected {ch!r}")
        if up == "S":
            k = j
            while k < n and body[k].isdigit():
                k += 1
            if k == j:
                raise CommandLineError("S without register number")
            name = "S" + str(int(body[j:k]))
            if body[k : k + 2] == "=?":
                cmds.append(Command(name, TEST))
                i = k + 2
            elif body[k : k + 1] == "?":
                cmds.append(Command(name, READ))
                i = k + 1
            elif body[k : k + 1] == "=":
                m = k + 1
                while m < n and body[m].isdigit():
                    m += 1
                cmds.append(Command(name, SET, body[k + 1 : m]))
                i = m
            else:
                raise CommandLineError("S register needs ?, = or =?")
            continue
        k = j
        while k < n and body[k].isdigit():
            k += 1
        if body[k : k + 1] == "?":
            cmds.append(Command(up, READ, body[j:k]))
            i = k + 1
            continue
        cmds.append(Command(up, EXEC if k == j else SET, body[j:k]))
        i = k
    return cmds
