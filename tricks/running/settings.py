"""The resolved settings of one run; their hash decides whether a stored result can be reused."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

PRECISIONS = ("fp32", "bf16")
PRECISION_CHOICES = ("auto",) + PRECISIONS   # what a user may ask for; "auto" is resolved per device
# Bumped whenever the engine's numerics change (memory format, op order), so that stored runs made
# by an older engine are never mixed with new ones (a study refuses them; --replace moves them aside).
# 2: channels_last activations, vectorized dropout masks.
# 3: dropout masks from 16-bit integer draws (a different random stream); evaluation batch 250.
ENGINE_VERSION = 3


@dataclass(frozen=True)
class RunSettings:
    spec: str
    variant: str
    tricks: tuple[dict[str, Any], ...]  # resolved tricks, every parameter included
    imports: tuple[str, ...]            # modules that register extra tricks
    seed: int
    epochs: int                         # full passes over the training (sub)set
    batch_size: int                     # images per optimizer step
    train_subset: int | None            # class-balanced subset size, or None for the whole split
    precision: str                      # "fp32" or "bf16" (autocast)
    data_kind: str
    data_sha256: str                    # the decoded dataset's checksum: a different dataset re-runs
    engine: int = ENGINE_VERSION
    validation: int = 0                 # images carved out of the training split for validation
    trick_versions: tuple[tuple[str, int], ...] = ()   # (trick name, its version), in spec order
    threads: int = 1                    # intra-op CPU threads of the run (they change its arithmetic)
    tuned_lr: float | None = None       # a [tuning] grid's peak LR (per optimizer step); None: the variant's own
    model: str = "tf_cnn"               # the registered model (specs.models); tf_cnn: the study's net
    workload: str | None = None         # the workload's name in a multi-workload spec (a label, not a setting)
    device: str = "cpu"                 # the device kind it trains on, "cpu" or "cuda" (not the GPU's index)
    population: bool = False            # trained as a member of a population (grouped kernels: other rounding)
    data_root: str | None = None        # a workload's own dataset's directory (a label: data_sha256 is the
                                        # setting); None: the study's --data-dir
    entry: str | None = None            # an entry-point workload's "module:function" (specs.entry); None: the engine
    config: dict | None = None          # the entry point's configuration (workload's, then the variant's keys)
    sources: tuple[tuple[str, str], ...] = ()   # (module, sha256 of its source): the spec's imports and entry
    code_root: str | None = None        # the spec's folder, where those modules are looked up first (a label)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a record stores them; the device only when it is not the CPU and population
        training only when on, so a solo CPU run's settings read exactly as they did before either was a
        setting."""
        d = asdict(self)
        if d["device"] == "cpu":
            del d["device"]
        if not d["population"]:
            del d["population"]
        if d["data_root"] is None:
            del d["data_root"]
        for name in ("entry", "config", "code_root"):   # set for entry points and specs with imports only
            if d[name] is None:
                del d[name]
        d["sources"] = dict(self.sources)
        if not d["sources"]:
            del d["sources"]
        d["tricks"] = [dict(t) for t in self.tricks]
        d["imports"] = list(self.imports)
        d["trick_versions"] = dict(self.trick_versions)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSettings":
        d = dict(d)
        d["tricks"] = tuple(dict(t) for t in d["tricks"])
        d["imports"] = tuple(d["imports"])
        d["trick_versions"] = tuple((str(k), int(v)) for k, v in dict(d.get("trick_versions") or {}).items())
        d["sources"] = tuple((str(k), str(v)) for k, v in dict(d.get("sources") or {}).items())
        return cls(**d)

    def key(self) -> str:
        """A stable hash of everything that changes a run's outcome: the device kind too (a CUDA run draws
        other dropout and augmentation streams and runs other kernels), not the GPU's index nor the workers.

        Settings added after the first record schema enter the hash only when they differ from the
        value that reproduces the earlier behaviour (no validation split, trick version 1, one
        intra-op thread, no tuned LR, the tf_cnn model, the CPU and solo training: ``to_dict`` leaves
        those two out, as it leaves out the entry point, its config and the imported modules' sources of
        a spec without them), so runs
        stored before those settings existed keep their keys and are reused, not trained again.
        Computed once per instance (a study start asks each planned run's key several times).
        """
        if "_key" not in self.__dict__:
            object.__setattr__(self, "_key", self._key())
        return self.__dict__["_key"]

    def _key(self) -> str:
        d = self.to_dict()
        if d["validation"] == 0:
            del d["validation"]
        if d["threads"] == 1:       # every stored run before threads were a setting trained on one
            del d["threads"]
        if d["tuned_lr"] is None:   # not tuned: the variant's own LRs, as every run before tuning existed
            del d["tuned_lr"]
        if d["model"] == "tf_cnn":  # every run before models were a setting trained the study's net
            del d["model"]
        del d["workload"]           # a label: the model and budget it names are settings of their own
        d.pop("data_root", None)    # a label: the dataset's checksum is the setting, not where it lies
        d.pop("code_root", None)    # a label: the modules' sources are the setting, not where they lie
        changed = {name: v for name, v in d.pop("trick_versions").items() if v != 1}
        if changed:
            d["trick_versions"] = changed
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def stem(self) -> str:
        from .records import run_stem

        return run_stem(self.arm, self.seed)

    @property
    def arm(self) -> str:
        from .records import run_arm

        return run_arm(self.variant, self.tuned_lr, self.workload)
