"""Methods, criteria and datasets from outside the package: entry points and ``register_*``.

A third party adds to the three registries in either of two ways:

* entry points, in its package metadata::

      [project.entry-points."saliency_audit.criteria"]
      map_entropy = "mypkg.audit:ENTROPY"          # a CriterionSpec

      [project.entry-points."saliency_audit.methods"]
      centre = "mypkg.audit:method_specs"          # or a callable returning one spec or several

  (groups ``saliency_audit.methods``, ``saliency_audit.criteria``, ``saliency_audit.datasets``), read once,
  the first time a registry is consulted (``name in CRITERIA``, ``METHODS[name]``, iterating them...);
* a call: ``register_method`` (a :class:`~saliency_audit.methods.registry.MethodSpec`),
  ``register_criterion`` (a :class:`~saliency_audit.common.criteria_registry.CriterionSpec`),
  ``register_dataset`` (a :class:`~saliency_audit.data.registry.DatasetSpec`), all importable from
  ``saliency_audit`` (each defined beside its registry; this module holds what the three share).

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


#: kind -> its registry; each registry enters itself here when its module builds it, so this module (the
#: lowest layer) never imports the layers that own the registries
_REGISTRIES: dict = {}


class Registry(dict):
    """name -> spec, in registration order (built-ins first).  The first lookup loads the extensions."""

    def __init__(self, kind: str, specs, spec_class: type):  # noqa: D107
        super().__init__((s.name, s) for s in specs)
        self.kind = kind
        self.spec_class = spec_class
        self.builtin = tuple(super().keys())
        _REGISTRIES[kind] = self

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


def register(registry: Registry, spec, where: str) -> None:
    """Add ``spec`` to ``registry`` (the ``register_*`` calls of the three registries' modules, and entry points)."""
    kind, cls = registry.kind, registry.spec_class
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

    for k in (kind,) if kind else tuple(_REGISTRIES):
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
                    register(_REGISTRIES[k], spec, where)
        except ExtensionError as exc:
            _State.error[k] = exc
        finally:
            _State.loading.discard(k)
            _State.loaded.add(k)
        if k in _State.error:
            raise _State.error[k]


def reset() -> None:
    """Forget every registered extension (the built-ins stay); the next lookup reads the entry points again."""
    for registry in _REGISTRIES.values():
        for name in [n for n in dict.keys(registry) if n not in registry.builtin]:
            dict.__delitem__(registry, name)
    _State.origin.clear()
    _State.error.clear()
    _State.loaded.clear()
