"""Methods, criteria and datasets from outside the package: entry points and ``register_*``.

A third party adds to the three registries in either of two ways:

* entry points, in its package metadata::

      [project.entry-points."saliency_audit.criteria"]
      map_entropy = "mypkg.audit:ENTROPY"          # a CriterionSpec

      [project.entry-points."saliency_audit.methods"]
      centre = "mypkg.audit:method_specs"          # or a callable returning one spec or several

  (groups ``saliency_audit.methods``, ``saliency_audit.criteria``, ``saliency_audit.datasets``), read once,
  the first time a registry is consulted (``name in CRITERIA``, ``METHODS[name]``, iterating them...);
* a call: :func:`register_method` (a :class:`~saliency_audit.methods.registry.MethodSpec`),
  :func:`register_criterion` (a :class:`~saliency_audit.criteria.registry.CriterionSpec`),
  :func:`register_dataset` (a :class:`~saliency_audit.data.registry.DatasetSpec`), all importable from
  ``saliency_audit``.

A name must be lower-case letters, digits and ``_`` (it becomes a pytest id and an HTML anchor) and may not
be a built-in's; either mistake, or an entry point that does not load to a spec, is an
:class:`ExtensionError` (a usage error) of one line naming the entry point.  Importing this module is cheap:
an entry point's module is imported only when the registries are first consulted.
"""
from __future__ import annotations

import re

from .errors import AuditUsageError, one_line

GROUPS = {"method": "saliency_audit.methods", "criterion": "saliency_audit.criteria",
          "dataset": "saliency_audit.datasets"}
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class ExtensionError(AuditUsageError):
    """A third party's method, criterion or dataset that cannot be registered."""


class _State:
    loaded: set = set()  # the kinds whose entry points were read
    loading: set = set()
    error: dict = {}  # kind -> the ExtensionError its entry points gave (raised at every lookup)
    origin: dict = {}  # (kind, name) -> where it came from ("entry point ..." or "register_criterion")


class Registry(dict):
    """name -> spec, in registration order (built-ins first).  The first lookup loads the extensions."""

    def __init__(self, kind: str, specs):
        super().__init__((s.name, s) for s in specs)
        self.kind = kind
        self.builtin = tuple(super().keys())

    def _ready(self) -> None:
        if self.kind not in _State.loaded and self.kind not in _State.loading:
            load(self.kind)
        if self.kind in _State.error:
            raise _State.error[self.kind]

    def __getitem__(self, name):
        self._ready()
        return super().__getitem__(name)

    def __contains__(self, name) -> bool:
        self._ready()
        return super().__contains__(name)

    def __iter__(self):
        self._ready()
        return super().__iter__()

    def __len__(self) -> int:
        self._ready()
        return super().__len__()

    def get(self, name, default=None):
        self._ready()
        return super().get(name, default)

    def keys(self):
        self._ready()
        return super().keys()

    def values(self):
        self._ready()
        return super().values()

    def items(self):
        self._ready()
        return super().items()


def _registry(kind: str) -> tuple[Registry, type]:
    """The registry of ``kind`` and its spec class (imported only when asked: the data package imports torch)."""
    if kind == "method":
        from .methods.registry import METHODS, MethodSpec

        return METHODS, MethodSpec
    if kind == "criterion":
        from .criteria.registry import CRITERIA, CriterionSpec

        return CRITERIA, CriterionSpec
    from .data.registry import DATASETS, DatasetSpec

    return DATASETS, DatasetSpec


def _register(kind: str, spec, where: str) -> None:
    registry, cls = _registry(kind)
    if not isinstance(spec, cls):
        raise ExtensionError(f"{where}: gave {type(spec).__name__}, not a {cls.__name__}")
    name = spec.name
    if not isinstance(name, str) or not _NAME.match(name):
        raise ExtensionError(f"{where}: {kind} name {name!r} must be lower-case letters, digits and _")
    if name in registry.builtin:
        raise ExtensionError(f"{where}: {kind} {name!r} clashes with the built-in {kind} of that name; rename it")
    held = dict.get(registry, name)
    if held is not None and held != spec:
        raise ExtensionError(f"{where}: {kind} {name!r} is already registered by {_State.origin.get((kind, name))}")
    dict.__setitem__(registry, name, spec)
    _State.origin[(kind, name)] = where


def register_method(spec) -> None:
    """Add a saliency method (a ``MethodSpec``; its ``fn`` an absolute ``"module:function"``)."""
    _register("method", spec, f"register_method({getattr(spec, 'name', spec)!r})")


def register_criterion(spec) -> None:
    """Add a criterion (a ``CriterionSpec``; its ``entry`` an absolute ``"module:function"`` or a callable
    ``fn(ctx, method) -> CriterionResult``)."""
    _register("criterion", spec, f"register_criterion({getattr(spec, 'name', spec)!r})")


def register_dataset(spec) -> None:
    """Add a dataset adapter (a ``DatasetSpec``; its ``adapter`` an absolute ``"module:Class"``)."""
    _register("dataset", spec, f"register_dataset({getattr(spec, 'name', spec)!r})")


def _specs(obj):
    """An entry point's object as a list: a spec, or a callable giving one spec or several."""
    if callable(obj) and not hasattr(obj, "name"):
        obj = obj()
    if hasattr(obj, "name"):
        return [obj]
    try:
        return list(obj)
    except TypeError:
        return [obj]


def load(kind: str | None = None) -> None:
    """Read the entry points of ``kind``'s group (None: all three), once per group."""
    from importlib.metadata import entry_points

    for k in (kind,) if kind else tuple(GROUPS):
        if k in _State.loaded or k in _State.loading:
            continue
        group = GROUPS[k]
        _State.loading.add(k)
        try:
            for ep in sorted(entry_points(group=group), key=lambda e: e.name):
                where = f"entry point {ep.name} = {ep.value!r} (group {group})"
                try:
                    specs = _specs(ep.load())
                except Exception as exc:
                    raise ExtensionError(f"{where}: does not load ({type(exc).__name__}: {one_line(exc)})") from None
                for spec in specs:
                    _register(k, spec, where)
        except ExtensionError as exc:
            _State.error[k] = exc
        finally:
            _State.loading.discard(k)
            _State.loaded.add(k)
        if k in _State.error:
            raise _State.error[k]


def reset() -> None:
    """Forget every registered extension (the built-ins stay); the next lookup reads the entry points again."""
    for kind in GROUPS:
        registry, _ = _registry(kind)
        for name in [n for n in dict.keys(registry) if n not in registry.builtin]:
            dict.__delitem__(registry, name)
    _State.origin.clear()
    _State.error.clear()
    _State.loaded.clear()
