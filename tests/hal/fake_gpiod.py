"""Stand-ins for the two ``gpiod`` Python APIs, shaped like the real bindings.

v2 mirrors libgpiod 2.x ``bindings/python/gpiod`` (``Chip``,
``line_offset_from_id``, ``get_info().num_lines``, ``get_line_info().name``,
``request_lines(config, consumer=...)``, ``LineSettings`` dataclass,
``line.{Value,Direction,Bias,Edge}``, ``EdgeEvent.Type``, request ``fd`` and
``read_edge_events``). v1 mirrors libgpiod 1.6 ``gpiodmodule.c``
(``Chip(path)``, ``find_line`` -> ``None``, ``get_line``, ``num_lines()``,
``Line.request(consumer, type, flags, default_val)``, ``LINE_REQ_*``
constants with their values, ``LineEvent.RISING_EDGE``, ``event_get_fd``,
``event_read``).

Both run on one :class:`World`: chips with named lines, the values the lines
hold, which lines are busy, and every request made (so tests can assert what
the adapter asked for). Edge events go through a real pipe per request, so
the event loop watches a real file descriptor.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import types
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass
class Requested:
    api: str
    path: str
    offset: int
    consumer: str | None
    settings: object = None  # v2 LineSettings
    type: int | None = None  # v1 request type
    flags: int | None = None  # v1 flags
    default_val: int | None = None
    released: bool = False
    read_fd: int = -1
    write_fd: int = -1
    events: list = field(default_factory=list)


class World:
    def __init__(self, chips: dict[str, list[str]]) -> None:
        self.chips = chips  # path -> line names ("" = unnamed)
        self.values: dict[tuple[str, int], int] = {}
        self.busy: set[tuple[str, int]] = set()
        self.requests: list[Requested] = []
        self.sets: list[tuple[str, int, int]] = []

    def live(self, path: str, offset: int) -> Requested:
        for r in self.requests:
            if r.path == path and r.offset == offset and not r.released:
                return r
        raise LookupError((path, offset))

    def edge(self, path: str, offset: int, value: int, ts: int = 1) -> None:
        """The outside world changes an input: the value, and an event if watched."""
        self.values[(path, offset)] = value
        r = self.live(path, offset)
        r.events.append((value, ts))
        os.write(r.write_fd, b"e")

    def level(self, path: str, offset: int, value: int) -> None:
        """Change a level without an event (a bounce shorter than edge detection)."""
        self.values[(path, offset)] = value

    def _request(self, r: Requested) -> None:
        key = (r.path, r.offset)
        if key in self.busy or any(
            q.path == r.path and q.offset == r.offset and not q.released for q in self.requests
        ):
            raise OSError(errno.EBUSY, "Device or resource busy")
        r.read_fd, r.write_fd = os.pipe()
        os.set_blocking(r.read_fd, False)
        self.requests.append(r)

    def _release(self, r: Requested) -> None:
        if r.released:
            raise AssertionError("released twice")
        r.released = True
        os.close(r.read_fd)
        os.close(r.write_fd)

    def _drain(self, r: Requested) -> list:
        with contextlib.suppress(BlockingIOError):
            os.read(r.read_fd, 4096)
        out, r.events = r.events, []
        return out


# ----------------------------------------------------------------------- v2


def make_v2(world: World) -> types.ModuleType:
    g = types.ModuleType("gpiod")
    line = types.ModuleType("gpiod.line")

    class Value(enum.Enum):
        INACTIVE = 0
        ACTIVE = 1

    class Direction(enum.Enum):
        AS_IS = 1
        INPUT = 2
        OUTPUT = 3

    class Bias(enum.Enum):
        AS_IS = 1
        UNKNOWN = 2
        DISABLED = 3
        PULL_UP = 4
        PULL_DOWN = 5

    class Drive(enum.Enum):
        PUSH_PULL = 1
        OPEN_DRAIN = 2
        OPEN_SOURCE = 3

    class Edge(enum.Enum):
        NONE = 1
        RISING = 2
        FALLING = 3
        BOTH = 4

    class Clock(enum.Enum):
        MONOTONIC = 1
        REALTIME = 2
        HTE = 3

    for cls in (Value, Direction, Bias, Drive, Edge, Clock):
        setattr(line, cls.__name__, cls)

    @dataclass(repr=False)
    class LineSettings:
        direction: Direction = Direction.AS_IS
        edge_detection: Edge = Edge.NONE
        bias: Bias = Bias.AS_IS
        drive: Drive = Drive.PUSH_PULL
        active_low: bool = False
        debounce_period: timedelta = timedelta()
        event_clock: Clock = Clock.MONOTONIC
        output_value: Value = Value.INACTIVE

    class EdgeEvent:
        class Type(enum.Enum):
            RISING_EDGE = 1
            FALLING_EDGE = 2

        def __init__(self, event_type, timestamp_ns, line_offset, global_seqno, line_seqno):
            self.event_type = EdgeEvent.Type(event_type)
            self.timestamp_ns = timestamp_ns
            self.line_offset = line_offset
            self.global_seqno = global_seqno
            self.line_seqno = line_seqno

    class LineRequest:
        def __init__(self, reqs: dict[int, Requested]) -> None:
            self._reqs = reqs
            self._released = False
            first = next(iter(reqs.values()))
            self.fd = first.read_fd

        def get_value(self, line):
            r = self._reqs[line]
            return Value(world.values.get((r.path, r.offset), 0))

        def set_value(self, line, value):
            assert isinstance(value, Value), value
            r = self._reqs[line]
            world.values[(r.path, r.offset)] = value.value
            world.sets.append((r.path, r.offset, value.value))

        def read_edge_events(self, max_events=None):
            out = []
            for off, r in self._reqs.items():
                for value, ts in world._drain(r):
                    out.append(EdgeEvent(1 if value else 2, ts, off, 0, 0))
            return out

        def release(self):
            for r in self._reqs.values():
                world._release(r)

    class _Info:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    class Chip:
        def __init__(self, path: str) -> None:
            if path not in world.chips:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
            self.path = path
            self._open = True

        def get_info(self):
            return _Info(
                name=os.path.basename(self.path),
                label="fake",
                num_lines=len(world.chips[self.path]),
            )

        def line_offset_from_id(self, id):
            names = world.chips[self.path]
            if not isinstance(id, int):
                if id in names:
                    return names.index(id)
                try:
                    offset = int(id)
                except ValueError:
                    raise OSError(errno.ENOENT, "No such file or directory") from None
            else:
                offset = id
            if offset >= len(names):
                raise ValueError("line offset of out range")
            return offset

        def get_line_info(self, line):
            off = self.line_offset_from_id(line)
            return _Info(offset=off, name=world.chips[self.path][off] or None)

        def request_lines(self, config, consumer=None, event_buffer_size=None, output_values=None):
            assert self._open
            reqs = {}
            for key, settings in config.items():
                off = self.line_offset_from_id(key)
                r = Requested("v2", self.path, off, consumer, settings=settings)
                world._request(r)
                if settings.direction == Direction.OUTPUT:
                    world.values[(self.path, off)] = settings.output_value.value
                reqs[off] = r
            return LineRequest(reqs)

        def close(self):
            assert self._open, "closed twice"
            self._open = False

    def request_lines(path, *args, **kwargs):
        chip = Chip(path)
        try:
            return chip.request_lines(*args, **kwargs)
        finally:
            chip.close()

    g.line = line
    g.LineSettings = LineSettings
    g.EdgeEvent = EdgeEvent
    g.LineRequest = LineRequest
    g.Chip = Chip
    g.request_lines = request_lines
    g.__version__ = "2.2.0-fake"
    return g


# ----------------------------------------------------------------------- v1


def make_v1(world: World) -> types.ModuleType:
    g = types.ModuleType("gpiod")
    consts = {
        "LINE_REQ_DIR_AS_IS": 1,
        "LINE_REQ_DIR_IN": 2,
        "LINE_REQ_DIR_OUT": 3,
        "LINE_REQ_EV_FALLING_EDGE": 4,
        "LINE_REQ_EV_RISING_EDGE": 5,
        "LINE_REQ_EV_BOTH_EDGES": 6,
        "LINE_REQ_FLAG_OPEN_DRAIN": 1 << 0,
        "LINE_REQ_FLAG_OPEN_SOURCE": 1 << 1,
        "LINE_REQ_FLAG_ACTIVE_LOW": 1 << 2,
        "LINE_REQ_FLAG_BIAS_DISABLE": 1 << 3,
        "LINE_REQ_FLAG_BIAS_PULL_DOWN": 1 << 4,
        "LINE_REQ_FLAG_BIAS_PULL_UP": 1 << 5,
    }
    for k, v in consts.items():
        setattr(g, k, v)

    class LineEvent:
        RISING_EDGE = 1
        FALLING_EDGE = 2

        def __init__(self, type, sec, nsec, source):
            self.type = type
            self.sec = sec
            self.nsec = nsec
            self.source = source

    class Line:
        def __init__(self, chip, offset):
            self._chip = chip
            self._offset = offset
            self._req: Requested | None = None

        def offset(self):
            return self._offset

        def name(self):
            return world.chips[self._chip.path][self._offset] or None

        def request(self, consumer, type=consts["LINE_REQ_DIR_AS_IS"], flags=0, default_val=None):
            assert self._chip._open, "the chip must stay open while its lines are used"
            r = Requested(
                "v1",
                self._chip.path,
                self._offset,
                consumer,
                type=type,
                flags=flags,
                default_val=default_val,
            )
            world._request(r)
            if type == consts["LINE_REQ_DIR_OUT"]:
                world.values[(r.path, r.offset)] = 1 if default_val else 0
            self._req = r

        def get_value(self):
            assert self._req is not None and not self._req.released
            return world.values.get((self._chip.path, self._offset), 0)

        def set_value(self, value):
            assert self._req is not None and not self._req.released
            assert value in (0, 1)
            world.values[(self._chip.path, self._offset)] = value
            world.sets.append((self._chip.path, self._offset, value))

        def event_get_fd(self):
            assert self._req is not None
            return self._req.read_fd

        def event_read(self):
            assert self._req is not None
            r = self._req
            try:
                os.read(r.read_fd, 1)
            except BlockingIOError:
                raise AssertionError("event_read would block") from None
            value, ts = r.events.pop(0)
            return LineEvent(
                LineEvent.RISING_EDGE if value else LineEvent.FALLING_EDGE,
                ts // 1_000_000_000,
                ts % 1_000_000_000,
                self,
            )

        def release(self):
            assert self._req is not None
            world._release(self._req)

    class Chip:
        def __init__(self, path):
            if path not in world.chips:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
            self.path = path
            self._open = True

        def name(self):
            return os.path.basename(self.path)

        def num_lines(self):
            return len(world.chips[self.path])

        def get_line(self, offset):
            if offset >= len(world.chips[self.path]):
                raise OSError(errno.EINVAL, "Invalid argument")
            return Line(self, offset)

        def find_line(self, name):
            names = world.chips[self.path]
            return Line(self, names.index(name)) if name in names else None

        def close(self):
            assert self._open, "closed twice"
            self._open = False

    g.LineEvent = LineEvent
    g.Line = Line
    g.Chip = Chip
    return g
