"""Randomized copies built in place, and named before they are built.

The randomization criterion explains each image at each cascade stage with a copy of its own (per-image
draws): a deep copy, a re-initialisation and a weight hash per image and stage took longer than the maps.
:class:`Scratch` is one copy of the primary whose blocks are re-initialised and restored in place as the
copies asked for need: each block is re-initialised under its own seed (randomize.reinit_blocks), so a block
re-initialised for one stage is the block of every later stage of the same draw, and a block restored from
the primary is the primary's again, bit for bit.  A stage's weights are exactly those of a fresh
``randomize_copy`` of the same blocks and seed.

:class:`Deferred` is a copy named but not built: the map store finds its cached maps by its name
(``info.extra["copy"]``, ModelSet.copy_token) and builds it only when a map of it must be computed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

from . import randomize


class Scratch:
    """One re-initialisable copy of ``primary`` (an AuditModel), cut into ``blocks`` (Block list)."""

    def __init__(self, primary, blocks, bn_policy: str):
        self.primary, self.blocks, self.bn_policy = primary, blocks, bn_policy
        self.model = copy.deepcopy(primary).eval()
        self.seed: int | None = None  # the seed of the blocks now re-initialised
        self.done: set[int] = set()  # ... their indices; every other block holds the primary's weights
        self.counts: dict[int, int] = {}  # layers each block resets (the same under every seed)

    def build(self, chosen: Sequence[int], seed: int) -> tuple[object, int]:
        """(model, layers reset): the primary with blocks ``chosen`` (indices) re-initialised under ``seed``, as
        ``randomize_copy`` builds it.  The model is a shell of its own around the shared network: its weights
        are valid until the next ``build``."""
        want = set(chosen)
        stale = self.done - want if seed == self.seed else self.done
        keep = self.done - stale
        self.seed = None  # until done: a failure midway leaves every block of ``done`` to be restored
        modules = lambda idx: [self.blocks[j].modules for j in idx]  # noqa: E731
        randomize.restore_blocks(self.model.net, self.primary.net, modules(sorted(stale)))
        new = [j for j in chosen if j not in keep]
        self.done = want
        self.counts.update(zip(new, randomize.reinit_blocks(self.model.net, modules(new), seed, self.bn_policy)))
        self.seed = seed
        n = sum(self.counts[j] for j in want)
        randomize.check_reset(self.primary, n)
        return copy.copy(self.model), n


@dataclass(eq=False)
class Deferred:
    """A randomized copy not built yet: its ModelInfo (its name ``info.extra["copy"]`` keys its maps), the model
    whose structure, input size and device it has (``like``: the primary), and ``build()``, which returns it."""

    info: object
    like: object
    build: Callable[[], object]

    @property
    def input_size(self) -> tuple[int, int]:
        return self.like.input_size
