"""Train a cohort: several runs of one network shape as one population (``population``), each member
ending with the outcome its solo run (``engine.train_run``) would give, up to float rounding.

A member is what a solo run is (``member.Member``: its own build from its seed, streams, optimizer, LR
schedule, per-step hooks, callbacks, history, checkpoint and outcome), and goes through the same epoch
loop (``member.fit``) and step loop (``steps.step_loop``). What a population shares: the training data
(one copy per process, ``build.shared_splits``), one batched forward and backward pass per step
(``population.PopulationNet``), one optimizer step over every member's parameter groups
(``population.merge_optimizers``), and one grouped forward pass over each evaluation batch for the
members whose evaluated models share a shape (the others are evaluated alone). Each member's own code
(callbacks, evaluation models, checkpoints) runs with its own global RNG stream in place
(``population.MemberRNG``). A member that stops (a callback, or a non-finite training loss: diverged) is
frozen (its parameter groups leave the optimizer) and leaves the population; the others go on, and a
NaN in one member never reaches another's numbers (members share no arithmetic). A member resumed from
a later epoch than the others joins at that epoch. Each outcome says which cohort it trained in
(``population``); ``train_seconds`` and ``eval_seconds`` of a member are its cohort's.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .allocator import keep_freed_memory
from .build import MEMORY_FORMAT
from .checkpoint import Checkpoints
from .data import Dataset
from .engine import EVAL_BATCH, KEEP_FREED_MEMORY, evaluate_solo, run_environment
from .member import Evaluation, Member, fit
from .population import MemberRNG, PopulationNet, merge_optimizers, signature
from .recipe import Recipe, forward, one_pass
from .steps import autocast, step_loop

Event = Callable[[str, dict], None]


def can_join(recipe: Recipe) -> str | None:
    """Why a variant cannot train in a population (its runs then train solo), or None when it can."""
    hooks = recipe.step_hooks()
    if hooks.compute_gradients is not one_pass:
        return f"its gradients come from {recipe._owner('compute_gradients').name}'s own passes"
    return None


def train_cohort(recipes: list[Recipe], settings: list, dataset: Dataset, device: torch.device,
                 emits: list[Event], checkpoints: list[Checkpoints | None], cohort: dict) -> list[dict]:
    """Train the members (all with one network shape, batch size, training split, precision and
    thread count) as one population; one outcome per member, with the keys of a solo outcome and
    ``population`` (``cohort`` plus the member's index). How it computes: ``engine.run_environment``."""
    precision, num_classes = settings[0].precision, len(dataset.classes)
    with run_environment(device, settings[0].threads) as said:
        if device.type == "cpu" and precision in KEEP_FREED_MEMORY:
            keep_freed_memory()
        rng = MemberRNG(device)
        members = []
        for i, (recipe, s, emit, ck) in enumerate(zip(recipes, settings, emits, checkpoints, strict=True)):
            members.append(Member.build(i, recipe, s, dataset, device, emit, ck))   # seeds the global RNG as solo
            rng.capture()                                                          # its dropout stream starts here
        net = PopulationNet([m.run.model for m in members], rng)
        merged: dict[tuple, list] = {}      # the members of an epoch -> their optimizers, merged

        def train_epoch(active: list[Member], epoch: int) -> list[tuple[float, float]]:
            ids = tuple(m.index for m in active)
            if ids not in merged:           # after the resume (it replaces optimizers' state), once per set
                merged.clear()
                merged[ids] = merge_optimizers([m.run.optimizer for m in active])
            lead, run = active[0], active[0].run
            return step_loop([m.lane() for m in active], run.train_x, run.train_y, lead.settings.batch_size,
                             precision, num_classes, forward=lambda xs: net.forward(xs, list(ids)),
                             optimizers=merged[ids],
                             on_step=lambda s, n: lead.emit("step", {"epoch": epoch, "step": s, "steps": n}))

        outs = fit(members, train_epoch, evaluate_members, stream=lambda m: rng.stream(m.index))
    return [{**o, "population": {**cohort, "index": m.index}, **said} for o, m in zip(outs, members)]


def evaluate_members(members: list[Member], nets: list[nn.Module], validation: bool) -> list[Evaluation]:
    """Each member's ``Evaluation`` of its evaluated model ``nets[j]``: the models that share a shape and
    predict with a plain forward pass in one grouped forward per batch, any other alone (``evaluate_solo``)."""
    results: list[Evaluation | None] = [None] * len(members)
    groups: dict[tuple, list[int]] = {}
    for j, (m, net) in enumerate(zip(members, nets)):
        sig = signature(net) if m.run.hooks.predict is forward else None
        if sig is None:
            results[j] = evaluate_solo(m, net, validation)
        else:
            groups.setdefault(sig, []).append(j)
    for js in groups.values():
        if len(js) == 1:
            results[js[0]] = evaluate_solo(members[js[0]], nets[js[0]], validation)
            continue
        ms, ns, run = [members[j] for j in js], [nets[j] for j in js], members[js[0]].run
        val = evaluate_grouped(ms, ns, run.val_x, run.val_y) if validation and run.val_y.numel() \
            else [(None, None)] * len(js)
        test = evaluate_grouped(ms, ns, run.test_x, run.test_y)
        for j, v, t in zip(js, val, test):
            results[j] = (*v, *t)
    return results


@torch.inference_mode()
def evaluate_grouped(members: list[Member], nets: list[nn.Module], images: torch.Tensor, labels: torch.Tensor
                     ) -> list[tuple[torch.Tensor, float]]:
    """(predicted classes, mean NLL) of each of ``nets`` (one shape) on ``images``: each batch converted
    once, each member's input transform, one grouped forward pass (``PopulationNet``). On the CPU a batch
    holds EVAL_BATCH images across all members (the allocator limit ``engine.EVAL_BATCH`` is about), on
    CUDA EVAL_BATCH per member."""
    k, device, precision = len(nets), images.device, members[0].settings.precision
    for n in nets:
        n.eval()
    net, ids = PopulationNet(nets), list(range(k))
    batch = EVAL_BATCH if device.type == "cuda" else max(1, EVAL_BATCH // k)
    losses = torch.zeros(k, dtype=torch.float64, device=device)
    preds = []
    for i in range(0, images.shape[0], batch):
        x = images[i:i + batch].float().div_(255.0)
        xs = [m.run.transform(x).contiguous(memory_format=MEMORY_FORMAT) for m in members]
        with autocast(device, precision):
            out = torch.stack(net.forward(xs, ids)).float()          # members x images x classes
        y = labels[i:i + batch]
        losses += F.nll_loss(out.flatten(0, 1), y.repeat(k), reduction="none").view(k, -1).sum(dim=1)
        preds.append(out.argmax(dim=2))
    every = torch.cat(preds, dim=1).cpu()
    return [(every[j], loss / images.shape[0]) for j, loss in enumerate(losses.tolist())]
