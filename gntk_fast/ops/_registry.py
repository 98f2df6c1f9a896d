"""One backend registry for every fast operation.

An :class:`Op` holds its backends in a fixed **preference order** (compiled
kernels first, the naive twin last). Each backend names the devices it runs on
natively and a ``check(**call)`` function that returns ``None`` when it can
serve the call, else the reason it cannot (a short phrase).

The one rule for ``backend="auto"``, used by every operation
    the first backend in the op's preference order that runs natively on the
    call's device and whose ``check`` accepts the call. The naive twin accepts
    every call, so "auto" always resolves. (A CPU run never auto-selects the
    Triton interpreter: it is a test vehicle, not a native CPU backend.)

An explicitly named backend
    must be able to serve the call; if it cannot (not installed, wrong
    device, unsupported dtype or activation, ...) :class:`BackendError` is
    raised naming the backend and the reason. There is never a silent switch
    to another backend.

Backend modules are imported lazily (``"module:function"`` strings), so
resolving "auto" on a CPU machine never imports Triton.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["BackendError", "Backend", "Op", "AUTO_RULE"]

AUTO_RULE = (
    "auto = the first backend, in the operation's preference order, that runs natively on the "
    "call's device and supports the call (dtype, activation, options); the naive twin is last and "
    "serves every call"
)


class BackendError(ValueError):
    """A backend named explicitly cannot serve the call (or the name is unknown)."""


@dataclass
class Backend:
    """One implementation of an operation.

    name:    registry key ("naive", "cpp", "numba", "triton", ...)
    target:  ``"module:attribute"`` of the implementation (imported on first use)
    devices: device types it runs on natively ("cpu", "cuda")
    check:   ``check(**call) -> str | None``: None when it can serve the call,
             else why not (availability included)
    """

    name: str
    target: str
    devices: tuple[str, ...]
    check: Callable[..., str | None] = lambda **_: None
    _fn: Callable | None = field(default=None, repr=False)

    def load(self) -> Callable:
        if self._fn is None:
            mod, _, attr = self.target.partition(":")
            self._fn = getattr(importlib.import_module(mod), attr)
        return self._fn


class Op:
    """An operation with its backends in preference order (see module docstring)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.backends: dict[str, Backend] = {}

    def register(self, name: str, target: str, *, devices: tuple[str, ...] = ("cpu",),
                 check: Callable[..., str | None] | None = None) -> Backend:
        """Append a backend (later registrations are preferred less)."""
        b = Backend(name, target, tuple(devices), check or (lambda **_: None))
        self.backends[name] = b
        return b

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.backends)

    def resolve(self, backend: Any, device: str, **call: Any) -> Backend:
        """The backend serving a call on ``device`` ("cpu"/"cuda") with the
        call's properties ``call`` (passed to each ``check``)."""
        choices = ("auto", *self.backends)
        if not isinstance(backend, str) or backend not in choices:
            raise BackendError(f"backend must be one of {', '.join(map(repr, choices))} for {self.name}; got {backend!r}")
        if backend != "auto":
            b = self.backends[backend]
            why = b.check(device=device, **call)
            if why is not None:
                raise BackendError(f"backend {backend!r} cannot compute {self.name} here: {why}")
            return b
        for b in self.backends.values():
            if device in b.devices and b.check(device=device, **call) is None:
                return b
        raise BackendError(f"no backend of {self.name} serves this call on {device}")  # pragma: no cover

    def __call__(self, backend: Any, device: str, **call: Any) -> Callable:
        """Shorthand: the loaded implementation of :meth:`resolve`."""
        return self.resolve(backend, device, **call).load()

    def __repr__(self) -> str:
        return f"Op({self.name!r}, backends={list(self.backends)})"
