"""Checks that a built component has the members its kind's interface (a ``typing.Protocol``) declares.

``isinstance`` against a runtime-checkable protocol only says yes or no; this says which member is
missing, so ``Pipeline.build`` and the plugin author kit can name it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from registry_core._errors import ComponentInterfaceError
from registry_core._spec import ComponentSpec, KindSpec
from registry_core._targets import load_target

__all__ = ["check_members", "interface_of", "missing_members", "protocol_members"]

#: Members every class has or that only typing machinery defines.
_IGNORED = frozenset({"__init__", "__class_getitem__", "__init_subclass__", "__subclasshook__", "__slots__"})


@cache
def protocol_members(proto: type) -> tuple[str, ...]:
    """Attributes and methods a protocol declares (its own and its protocol bases'), in declaration order."""
    names: dict[str, None] = {}
    for cls in reversed(proto.__mro__):
        if not getattr(cls, "_is_protocol", False) or cls.__module__ == "typing":
            continue
        for name in (*getattr(cls, "__annotations__", {}), *vars(cls)):
            if name in _IGNORED or (name.startswith("_") and name != "__call__"):
                continue
            names[name] = None
    return tuple(names)


def interface_of(kind: KindSpec) -> type | None:
    """The kind's interface class, or None when it declares none (or it is not a protocol)."""
    if kind.interface is None:
        return None
    obj: Any = load_target(kind.interface)
    return obj if isinstance(obj, type) and getattr(obj, "_is_protocol", False) else None


def missing_members(obj: Any, proto: type) -> list[str]:
    """Members of ``proto`` that ``obj`` lacks (``__call__`` must be callable)."""
    out = []
    for name in protocol_members(proto):
        if name == "__call__":
            if not callable(obj):
                out.append(name)
        elif not hasattr(obj, name):
            out.append(name)
    return out


def check_members(obj: Any, spec: ComponentSpec, kind: KindSpec, slot: str | None = None) -> None:
    """Raise ComponentInterfaceError naming the component and every member of its kind it lacks."""
    proto = interface_of(kind)
    if proto is None:
        return
    missing = missing_members(obj, proto)
    if missing:
        where = f"[{slot}] " if slot else ""
        raise ComponentInterfaceError(
            f"{where}{spec.kind} {spec.id!r} (built by {spec.target}) lacks {', '.join(repr(m) for m in missing)}, "
            f"which every {spec.kind} has ({kind.interface}); its {type(obj).__name__} does not fit the interface"
        )
