"""ModelSet: every model an audit compares, by role, loaded lazily; the only place that builds randomized copies.

Roles: ``primary`` (the model under audit), ``randomized`` (every block
re-initialised), ``replicate<i>`` / ``reference<i>`` (``--replicate`` /
``--reference-model``), ``random_label``; cascade stages and single-block
copies come from :meth:`ModelSet.stage` and :meth:`ModelSet.single_block`.
Each model carries its :class:`~saliency_audit.models.info.ModelInfo`.
"""
from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from typing import Sequence

from ..common.errors import AuditError, AuditUsageError, Unavailable
from ..stats import stable_seed


def _is_script(model) -> bool:
    import torch

    return isinstance(model.net, torch.jit.ScriptModule)


class ModelSet:
    def __init__(self, config, primary: str, *, replicates: Sequence[str] = (), references: Sequence[str] = (),
                 random_label: str | None = None, allow_unsafe_pickle: bool = False, timings: dict | None = None):
        self.config = config
        self.primary_spec = primary
        self.replicate_specs = list(replicates)
        self.reference_specs = list(references)
        self.random_label_spec = random_label
        self.allow_unsafe_pickle = allow_unsafe_pickle
        self.timings = timings if timings is not None else {}
        self._models: dict[str, object] = {}
        self._draws: OrderedDict[str, object] = OrderedDict()  # randomized copies of draws >= 1, least recent first
        self._draw_bytes: int | None = None  # the size of one (all have the primary's shapes)
        self._blocks = None
        self._primary_fp: list | None = None  # what copy_token names of the primary
        self._scratch = None  # the network deferred copies are built on (models/inplace.py)

    def specs(self, kind: str) -> list[str]:
        """The specs given for ``replicate`` or ``reference`` models."""
        return self.replicate_specs if kind == "replicate" else self.reference_specs

    def is_loaded(self, role: str) -> bool:
        return role in self._models

    def accuracy(self, role: str, samples, index: int | None = None) -> dict:
        """How the model does on ``samples``: accuracy, balanced accuracy (mean recall over the labels
        present), label and prediction counts.  A balanced accuracy near 0.5 on a binary task usually means
        the images are not fed as the model was trained (input size, normalisation).

        A sigmoid head (independent outputs, or one logit) has no argmax class: it is scored on the explained
        output (``output_index``) against each image's binary label, by its AUROC (``auroc``: sklearn's
        ``roc_auc_score`` of the sigmoid, when both labels are present, else None) and its decisions at
        probability 0.5 (``accuracy``, ``balanced_accuracy``, ``predicted``); AUROC is what judges it, as a
        sigmoid's 0.5 need not be its operating point.  A label counts as positive when it is 1 (labels 0/1, a
        finding's), or, for class-index labels, when it is the explained output's index.  ``index``: the output
        scored (default: the one ``target_class`` explains), e.g. a finding's when findings are audited by name.
        """
        from .target import output_of, predicted_class

        model = self.get(role)
        labels = [int(s.label) for s in samples]
        logits = self._logits(model, samples)
        extra: dict = {}
        if output_of(model) == "sigmoid" or logits.shape[1] == 1:
            if logits.shape[1] == 1:
                index = 0
            else:
                index = self._explained_index(model) if index is None else model.target_index(index)
            positive = 1 if set(labels) <= {0, 1} else index
            labels = [int(y == positive) for y in labels]
            pred = (logits[:, index] > 0).long().tolist()
            extra = {"output": "sigmoid", "output_index": index, "threshold": 0.5,
                     "auroc": self._auroc(labels, logits[:, index])}
            names = getattr(getattr(model, "info", None), "class_names", None)
            if names:
                extra["output_name"] = names[index]
        else:
            pred = predicted_class(logits, output_of(model)).tolist()
        recall = {c: sum(p == c for p, y in zip(pred, labels) if y == c) / labels.count(c) for c in set(labels)}
        count = lambda xs: {str(c): xs.count(c) for c in sorted(set(xs))}  # noqa: E731
        return {"n": len(samples), "accuracy": sum(p == y for p, y in zip(pred, labels)) / len(samples),
                "balanced_accuracy": sum(recall.values()) / len(recall), "labels": count(labels),
                "predicted": count(pred), **extra}

    def _explained_index(self, model) -> int:
        """The output column the audit explains (``target_class``; a single logit's only one)."""
        return model.target_index(self.config.target_class)

    @staticmethod
    def _auroc(labels: list[int], scores) -> float | None:
        """AUROC of ``scores`` (logits: the sigmoid is monotone, so the same AUROC) against binary ``labels``;
        None when one label is missing (it is undefined)."""
        if len(set(labels)) < 2:
            return None
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(labels, scores.double().numpy()))

    def __setitem__(self, role: str, model) -> None:  # tests and advanced users substitute a model for a role
        self._models[role] = model

    def get(self, role: str = "primary"):
        if role in self._models:
            return self._models[role]
        from . import load_model

        t0 = time.perf_counter()
        mi = self.config.model
        load = dict(allow_unsafe_pickle=self.allow_unsafe_pickle, device=self.config.device,
                    input_size=tuple(mi.input_size) or None, normalize=(mi.mean, mi.std) if mi.mean else None)
        if role == "primary":
            m = load_model(self.primary_spec, role="primary", **load)
        elif role == "randomized":
            try:
                m = self.stage(None)
            except AuditError:  # no block structure found: re-initialise every layer at once
                if _is_script(self.get("primary")):
                    raise
                m = self._randomized(None, "randomized", "all layers")
        elif role == "random_label":
            if not self.random_label_spec:
                raise AuditUsageError("no --random-label-model given")
            m = load_model(self.random_label_spec, role="random_label", option="--random-label-model", **load)
        elif role.startswith(("replicate", "reference")):
            kind = "replicate" if role.startswith("replicate") else "reference"
            option = "--replicate" if kind == "replicate" else "--reference-model"
            m = load_model(self.specs(kind)[int(role[len(kind):])], role=kind, option=option, **load)
        else:
            raise AuditUsageError(f"unknown model role {role!r}")
        if role != "randomized":  # a loaded model: its output kind and --class-names (copies inherit them)
            from .target import apply_output, check_predicted

            apply_output(m, self.config.output, self.config.class_names)
            if role == "primary" and self.config.explain == "predicted":
                check_predicted(m)
        self._models[role] = m
        if self.config.device != "cpu":  # images per pass from free GPU memory, noted in the model's evidence
            from ..common.gpus import probe_model

            probe_model(m, self.config.device)
        self.timings[f"load_{role}"] = time.perf_counter() - t0
        return m

    def grid(self) -> tuple[int, int]:
        """The evaluation grid: the primary model's input size (images, masks and boxes are resized to it)."""
        return tuple(self.get("primary").input_size)

    def grid_source(self) -> str | None:
        """Where the grid was read when not from --input-size nor the architecture's default (the checkpoint)."""
        return self.get("primary").info.extra.get("input_size_from")

    # -- randomized copies --------------------------------------------------------------------
    def unavailable(self, role: str = "randomized") -> str | None:
        """Why ``role`` cannot be built for this primary (``randomized``: every re-initialised copy, cascade stages
        and single blocks too), or None when it can.  A TorchScript primary has no forward hooks to order its
        layer blocks by, nor modules to re-initialise one at a time."""
        if role in ("randomized", "cascade", "single") and _is_script(self.get("primary")):
            from .layers import script_module_message

            return script_module_message(self.get("primary"), "randomized copies need forward hooks to order the "
                                                              "network's layer blocks, which an archive has not")
        return None

    def blocks(self):
        """Randomization blocks of the primary model, head first (saliency_audit.models.blocks)."""
        if self._blocks is None:
            from .blocks import randomization_blocks

            m = self.get("primary")
            reason = self.unavailable("randomized")
            if reason:
                raise Unavailable(reason)
            override = list(self.config.randomization.blocks) or None
            self._blocks = randomization_blocks(m.net, (m.info.in_channels, *m.info.input_size), override)
        return self._blocks

    def stage(self, k: int | None, draw: int = 0, order: str = "top_down"):
        """The primary with its first ``k`` blocks re-initialised, counted from the head (``top_down``, Adebayo
        et al.) or from the input (``bottom_up``, Binder et al. 2023); None: every block.

        ``draw`` selects an independent randomization (another seed) of the same blocks.  A block gets the
        same random weights in either order, so the all-blocks stage is one model.
        """
        key, chosen, role, what = self._stage_spec(k, draw, order)
        kept = self._draws if draw else self._models
        if key in kept:
            if draw:
                self._draws.move_to_end(key)
            return kept[key]
        blocks = self.blocks()
        m = self._randomized([blocks[j] for j in chosen], role, what, draw)
        self._tag(m.info, key)
        if draw:
            self._keep_draw(key, m)
        else:
            self._models[key] = m
        if role == "randomized":
            self._models.setdefault("randomized", m)
        return m

    def deferred(self, k: int | None, draw: int = 0, order: str = "top_down"):
        """:meth:`stage`'s model, named now and built only when a map of it must be computed
        (:class:`~saliency_audit.models.inplace.Deferred`): on one scratch network whose blocks are re-initialised
        and restored in place (no deep copy, and a block the scratch already has under this draw is not
        re-initialised again), the same weights bit for bit.  A built one is valid until the next is built: for
        a caller that uses each at once, as the randomization criterion does, walking a draw's stages in
        cascade order."""
        from .inplace import Deferred, Scratch

        key, chosen, role, what = self._stage_spec(k, draw, order)
        blocks = self.blocks()
        info = self._info([blocks[j] for j in chosen], role, what, draw, None)
        self._tag(info, key)

        def build():
            bn = self.config.randomization.bn_policy
            if self._scratch is None or self._scratch.bn_policy != bn:
                self._scratch = Scratch(self.get("primary"), blocks, bn)
            m, n = self._scratch.build(chosen, self._seed(draw))
            m.info = dataclasses.replace(info, extra={**info.extra, "layers_reset": n})
            return m

        return Deferred(info, self.get("primary"), build)

    def _stage_spec(self, k: int | None, draw: int, order: str) -> tuple[str, list[int], str, str]:
        """(plan key, indices of the blocks re-initialised, role, description) of a cascade stage."""
        nb = len(self.blocks())
        k = nb if k is None else k
        bottom = order == "bottom_up" and k < nb
        key = ("bstage" if bottom else "stage") + f"{k}" + (f"-draw{draw}" if draw else "")
        if bottom:
            return key, list(range(nb - k, nb)), f"cascade-bottom-{k}", f"bottom {k} block(s)"
        return (key, list(range(k)), "randomized" if k == nb and draw == 0 else f"cascade-{k}",
                "all blocks" if k == nb else f"top {k} block(s)")

    def by_key(self, key: str):
        """The model of a plan's key: a role (``get``), ``stageK[-drawR]``, ``bstageK[-drawR]`` (bottom-up) or
        ``singleJ`` (built on first use)."""
        parsed = _copy_key(key)
        if parsed is None:
            return self.get(key)
        kind, k, draw, order = parsed
        return self.single_block(k) if kind == "single" else self.stage(k, draw, order)

    def recipe(self, key: str) -> str | None:
        """What tells the weights of the randomized copy ``key`` apart, without building it: the blocks it
        re-initialises (their modules, which seed them) and its draw (a block gets the same weights in any copy
        of the same draw, so copies of the same blocks and draw are the same weights); "primary" when it
        re-initialises nothing; None when ``key`` is not a copy made of blocks."""
        parsed = _copy_key(key)
        if parsed is None and key != "randomized":
            return None
        try:
            blocks = self.blocks()
        except AuditError:  # no block structure: "randomized" re-initialises every layer (built to be told apart)
            return None
        kind, k, draw, order = parsed or ("stage", len(blocks), 0, "top_down")
        if kind == "single":
            chosen = [blocks[k]]
        else:
            chosen = blocks[:k] if order == "top_down" or k >= len(blocks) else blocks[len(blocks) - k:]
        if not chosen:
            return "primary"
        return f"copy{draw}:" + ",".join(sorted("+".join(b.modules) for b in chosen))

    @staticmethod
    def build_unit(key: str) -> tuple[str, bool]:
        """What building the randomized copy ``key`` costs, for the plan's "copy" unit (engine/estimate.py): (name,
        in place).  A cascade stage is built in place (:meth:`deferred`), only when a map of it is missing, and
        its draw's walk through the stages re-initialises each block once: one unit per draw and order.  A single
        block, or the ``randomized`` model, is a deep copy of its own, built when asked for."""
        parsed = _copy_key(key)
        if parsed is None or parsed[0] == "single":
            return key, False
        return f"walk{parsed[2]}-{parsed[3]}", True

    def copy_token(self, recipe: str) -> str:
        """The name of the weights of the copy ``recipe`` (:meth:`recipe`) of this primary: its map cache key (the
        map store's fingerprint of a copy, which need not hash its weights, nor a plan build it).  It covers
        everything the weights depend on: the primary's weights and output kind, the seed, the BN policy, the
        recipe, the re-initialisation (randomize.VERSION, the torch version: init functions change) and where the
        weights live (device type and dtypes: a CUDA generator draws other numbers than the CPU's)."""
        import hashlib
        import json

        import torch

        from .randomize import VERSION
        from .target import independent
        from .wrapper import model_fingerprint

        if self._primary_fp is None:
            primary = self.get("primary")
            layout = sorted({f"{t.device.type}:{t.dtype}" for t in primary.net.state_dict().values()})
            self._primary_fp = [model_fingerprint(primary), int(independent(primary)), layout, VERSION,
                                torch.__version__]
        blob = json.dumps([*self._primary_fp, self.config.seed, self.config.randomization.bn_policy, recipe])
        return "copy-" + hashlib.sha256(blob.encode()).hexdigest()[:24]

    #: bytes of weights the deep copies of draws >= 1 (:meth:`stage`) may hold together (a caller asking for one
    #: per image and stage, 24 images x 7 stages of a densenet121, would hold 5 GB; the randomization criterion
    #: builds them in place instead, :meth:`deferred`); the least recently used go first and are rebuilt,
    #: identically (seeded), when needed again
    DRAW_BYTES = 2 << 30

    def _keep_draw(self, key: str, m) -> None:
        self._draws[key] = m
        if self._draw_bytes is None:
            self._draw_bytes = sum(t.numel() * t.element_size() for t in m.net.state_dict().values())
        while self._draw_bytes * len(self._draws) > self.DRAW_BYTES and len(self._draws) > 1:
            self._draws.popitem(last=False)  # every copy has the primary's shapes: the same size

    def single_block(self, j: int):
        """The primary with only block ``j`` re-initialised (independent randomization)."""
        key = f"single{j}"
        if key not in self._models:
            block = self.blocks()[j]
            self._models[key] = self._randomized([block], f"independent-{j}", f"only {block.name}")
            self._tag(self._models[key].info, key)
        return self._models[key]

    def _tag(self, info, key: str) -> None:
        """Name a copy's weights by its recipe (``info.extra["copy"]``, :meth:`copy_token`)."""
        recipe = self.recipe(key)
        if recipe not in (None, "primary"):
            info.extra["copy"] = self.copy_token(recipe)

    def _seed(self, draw: int) -> int:
        return stable_seed(self.config.seed, "randomization", *([draw] if draw else []))

    def _info(self, blocks, role: str, what: str, draw: int, n: int | None):
        """A randomized copy's ModelInfo (``blocks``: Block list, None: every layer; ``n``: layers reset)."""
        base = self.get("primary").info
        return dataclasses.replace(
            base, role=role, sha256=None, spec=f"{base.spec} ({what} re-initialised)",
            extra={"derived_from_sha256": base.sha256, "randomization_seed": self._seed(draw), "draw": draw,
                   "blocks": None if blocks is None else [b.name for b in blocks], "layers_reset": n,
                   "bn_policy": self.config.randomization.bn_policy})

    def _randomized(self, blocks, role: str, what: str, draw: int = 0):
        """A re-initialised copy of the primary (``blocks``: Block list; None: every layer) with its ModelInfo."""
        from .randomize import randomize_copy

        m, n = randomize_copy(self.get("primary"), blocks=None if blocks is None else [b.modules for b in blocks],
                              seed=self._seed(draw), bn_policy=self.config.randomization.bn_policy)
        m.info = self._info(blocks, role, what, draw, n)
        return m

    # -- passes -----------------------------------------------------------------------------
    def _logits(self, model, samples):
        """(N, outputs) logits of ``model`` on ``samples``, on the CPU (batched passes of ``pass_images``)."""
        import torch

        from ..config import pass_images
        from ..data.resize import prepare

        device = next(model.parameters()).device
        bs = pass_images(self.config, tuple(model.input_size))
        with torch.no_grad():
            return torch.cat([model(prepare(samples[i:i + bs], model.input_size, device)).float().cpu()
                              for i in range(0, len(samples), bs)])

    def describe(self) -> list[dict]:
        """ModelInfo of the models the evidence lists (cascade copies are described in their results)."""
        out, seen = [], set()
        for m in self._models.values():
            if m.info.role in ("primary", "randomized", "random_label", "replicate", "reference") and id(m) not in seen:
                seen.add(id(m))
                out.append(m.info.to_dict())
        return out


def _copy_key(key: str) -> tuple[str, int, int, str] | None:
    """(kind, k, draw, order) of a randomized copy's plan key (see :meth:`ModelSet.by_key`), else None."""
    if key.startswith(("stage", "bstage")):
        k, _, r = key[key.index("stage") + len("stage"):].partition("-draw")
        return "stage", int(k), int(r or 0), "bottom_up" if key[0] == "b" else "top_down"
    if key.startswith("single"):
        return "single", int(key[len("single"):]), 0, "top_down"
    return None
