"""The action registry: verbs, their typed arguments, security level, idempotency, timeout.

An action is an async function decorated with :func:`action`::

    from bridge.actions.registry import action
    from bridge.grammar import BoolArg, Level, NameArg

    @action("gpio set", args=(NameArg("line", "gpio"), BoolArg("value")),
            level=Level.SIGNED, idempotent=True, timeout=5.0, binary_id=3)
    async def gpio_set(ctx, line: str, value: bool) -> str:
        ...

The decorator only attaches an :class:`Action` (spec + function) to the
function (``fn.bridge_action``) and returns the function unchanged: importing
a plugin module changes no global state. A :class:`Registry` collects actions
(:meth:`Registry.add`, :meth:`Registry.add_module`); the dispatcher calls
``await fn(ctx, **command.args)`` (the context is the dispatcher's, defined
there). Third-party packages expose their actions through the entry-point
group :data:`ENTRY_POINT_GROUP` (a module, or one decorated function, per
entry point), loaded by :meth:`Registry.add_entry_points`::

    [project.entry-points."sms_bridge.actions"]
    relays = "my_package.relay_actions"
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.machinery import PathFinder
from types import ModuleType
from typing import Any, TypeVar

from ..grammar import ArgSpec, ArgValue, Level, VerbSpec

ActionFn = Callable[..., Awaitable[Any]]
IdempotencyFn = Callable[[Any, Mapping[str, ArgValue]], bool]
F = TypeVar("F", bound=ActionFn)

#: Attribute the decorator sets on the function.
ATTRIBUTE = "bridge_action"
#: Entry-point group third-party packages add actions through.
ENTRY_POINT_GROUP = "sms_bridge.actions"


@dataclass(frozen=True, slots=True)
class Action:
    """A registered verb: its spec and the async function that runs it.

    ``idempotent_when(ctx, args)``, when given, decides idempotency per
    Command instead of ``spec.idempotent`` (``run``: the script's own
    configuration says); it must not raise for arguments the grammar checked.
    """

    spec: VerbSpec
    fn: ActionFn
    idempotent_when: IdempotencyFn | None = None

    def idempotent(self, ctx: Any, args: Mapping[str, ArgValue]) -> bool:
        """Whether crash recovery may run this Command again."""
        if self.idempotent_when is None:
            return self.spec.idempotent
        return bool(self.idempotent_when(ctx, args))


#: Names of the files importlib.metadata's path finder takes for distribution metadata.
_INFO_SUFFIXES = (".dist-info", ".egg-info")


def may_offer_entry_points(group: str, path: Sequence[object] | None = None) -> bool:
    """Whether ``importlib.metadata.entry_points(group=group)`` could find anything.

    A cheap proof of absence that never imports ``importlib.metadata``: False
    only when no distribution on ``path`` (default ``sys.path``) has an
    ``entry_points.txt`` with a ``[group]`` section, found the way the
    standard path finder finds them (importlib.metadata ``FastPath``/``Lookup``:
    the children of each directory or zip archive named ``*.dist-info`` or
    ``*.egg-info``, and ``EGG-INFO`` in a ``*.egg``; sections read as
    ``Sectioned.read`` does). Anything it cannot judge (a meta-path finder of
    its own that finds distributions, a file it cannot read or decode, a path
    entry that is not a string) is True, so importlib.metadata decides. Plugins
    are therefore found exactly as before in wheels, editable installs, the
    zipapp (a zip on ``sys.path``) and the Debian tree.
    """
    for finder in sys.meta_path:
        if getattr(finder, "find_distributions", None) is not None and finder is not PathFinder:
            return True
    for entry in sys.path if path is None else path:
        if not isinstance(entry, str):
            return True
        base_is_egg = os.path.basename(entry).lower().endswith(".egg")
        try:
            children = os.listdir(entry or ".")
        except OSError:
            if not os.path.isfile(entry):
                continue  # importlib.metadata: no children either
            if _zip_offers(entry, group, base_is_egg):
                return True
            continue
        for child in children:
            low = child.lower()
            if low.endswith(_INFO_SUFFIXES) or (base_is_egg and low == "egg-info"):
                try:
                    with open(os.path.join(entry, child, "entry_points.txt"), "rb") as f:
                        data = f.read()
                except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                    continue  # importlib.metadata reads no entry points there either
                except OSError:
                    return True
                if _declares(data, group):
                    return True
    return False


def _zip_offers(archive: str, group: str, base_is_egg: bool) -> bool:
    """:func:`may_offer_entry_points` for a zip archive on the path (the zipapp)."""
    # Here: only for an archive on the path (the zipapp); a service from a tree never needs it.
    import zipfile  # noqa: PLC0415

    try:
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                top, _, rest = name.partition("/")
                low = top.lower()
                is_info = low.endswith(_INFO_SUFFIXES) or (base_is_egg and low == "egg-info")
                if rest == "entry_points.txt" and is_info and _declares(z.read(name), group):
                    return True
    except zipfile.BadZipFile:
        return False  # importlib.metadata: no children (zipfile.Path fails the same way)
    except Exception:  # unreadable here (an unsupported compression...): importlib decides
        return True
    return False


def _declares(data: bytes, group: str) -> bool:
    """Whether an ``entry_points.txt`` has the section ``[group]``, read the way
    importlib.metadata's ``Sectioned.read`` reads one (stripped lines; a
    section is a line in brackets, its name the line with the brackets
    stripped). Text that is not UTF-8 is True: importlib.metadata decides."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    for line in text.splitlines():
        value = line.strip()
        if value.startswith("[") and value.endswith("]") and value.strip("[]") == group:
            return True
    return False


class RegistryError(ValueError):
    """A programming error in an action's declaration (a bug in the plugin)."""


def action(
    verb: str,
    *,
    args: Sequence[ArgSpec] = (),
    level: Level = Level.SIGNED,
    idempotent: bool = False,
    timeout: float = 10.0,
    binary_id: int | None = None,
    help: str = "",
    idempotent_when: IdempotencyFn | None = None,
) -> Callable[[F], F]:
    """Declare an async function as the action of ``verb`` (see module doc).

    Defaults are the safe ones: ``signed`` level, not idempotent (recovery
    after a crash does not run it again). Raises :class:`RegistryError` for a
    function that is not ``async def`` or lacks a parameter for an argument.
    ``idempotent_when`` decides idempotency per Command (:class:`Action`).
    """
    spec = VerbSpec(verb, tuple(args), level, idempotent, timeout, binary_id, help)

    def decorate(fn: F) -> F:
        is_async = inspect.iscoroutinefunction(fn)  # kept apart: no narrowing of F
        if not is_async:
            raise RegistryError(f"action {verb!r}: {fn.__qualname__} is not an async function")
        params = inspect.signature(fn).parameters
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        positional = [p for p in params.values() if p.kind is not p.VAR_KEYWORD]
        if not positional and not any(p.kind is p.VAR_POSITIONAL for p in params.values()):
            raise RegistryError(f"action {verb!r}: the first parameter takes the context")
        for a in spec.args:
            if a.name not in params and not takes_kwargs:
                raise RegistryError(f"action {verb!r}: no parameter for argument {a.name!r}")
        setattr(fn, ATTRIBUTE, Action(spec, fn, idempotent_when))
        return fn

    return decorate


class Registry:
    """The verbs one dispatcher knows; verbs and binary ids are unique."""

    def __init__(self, actions: Sequence[ActionFn | Action] = ()) -> None:
        self._actions: dict[str, Action] = {}
        self._by_id: dict[int, Action] = {}
        for a in actions:
            self.add(a)

    def add(self, item: ActionFn | Action) -> Action:
        """Register a decorated function (or an :class:`Action`)."""
        act = item if isinstance(item, Action) else getattr(item, ATTRIBUTE, None)
        if not isinstance(act, Action):
            raise RegistryError(f"{item!r} is not decorated with @action")
        spec = act.spec
        if spec.verb in self._actions:
            raise RegistryError(f"verb {spec.verb!r} is registered twice")
        if spec.binary_id is not None and spec.binary_id in self._by_id:
            other = self._by_id[spec.binary_id].spec.verb
            raise RegistryError(f"binary id {spec.binary_id} of {spec.verb!r} is {other!r}'s")
        self._actions[spec.verb] = act
        if spec.binary_id is not None:
            self._by_id[spec.binary_id] = act
        return act

    def add_module(self, module: ModuleType) -> list[Action]:
        """Register every decorated function of a module, in name order."""
        found = [
            getattr(module, n)
            for n in sorted(vars(module))
            if isinstance(getattr(getattr(module, n), ATTRIBUTE, None), Action)
        ]
        return [self.add(f) for f in found]

    def add_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[Action]:
        """Register the actions every installed package offers in ``group``.

        An entry point names a module (all its decorated functions) or one
        decorated function. One that fails to load raises
        :class:`RegistryError` naming it and its package. Found by
        ``importlib.metadata``, imported only when :func:`may_offer_entry_points`
        sees a distribution that declares ``group``.
        """
        added: list[Action] = []
        if not may_offer_entry_points(group):
            return added
        # Imported here, only when a distribution declares the group: importlib.metadata
        # brings email, zipfile, csv... (about 1.8 MB the service would keep for its life).
        import importlib.metadata  # noqa: PLC0415

        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            where = f"entry point {ep.name!r} ({ep.value})"
            if ep.dist is not None:
                where += f" of {ep.dist.name}"
            try:
                obj = ep.load()
            except Exception as exc:
                raise RegistryError(f"{where}: {type(exc).__name__}: {exc}") from exc
            try:
                added += self.add_module(obj) if isinstance(obj, ModuleType) else [self.add(obj)]
            except RegistryError as exc:
                raise RegistryError(f"{where}: {exc}") from None
        return added

    @property
    def specs(self) -> Mapping[str, VerbSpec]:
        """verb -> spec, what :func:`bridge.grammar.parse` takes."""
        return {v: a.spec for v, a in self._actions.items()}

    def get(self, verb: str) -> Action | None:
        return self._actions.get(verb)

    def by_binary_id(self, binary_id: int) -> Action | None:
        return self._by_id.get(binary_id)

    def allowed(self, level: Level) -> list[VerbSpec]:
        """The verbs a sender at ``level`` may use (``help``), sorted."""
        return sorted((a.spec for a in self if a.spec.level <= level), key=lambda s: s.verb)

    def __iter__(self) -> Iterator[Action]:
        return iter(self._actions.values())

    def __len__(self) -> int:
        return len(self._actions)
