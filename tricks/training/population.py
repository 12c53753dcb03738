"""K runs of one network shape as one batched network: a *population* (``cohort`` trains one).

Each member keeps its own ``nn.Sequential`` (its own leaf parameters, optimizer, LR schedule,
callbacks and checkpoint, exactly as a solo run builds them); the forward pass is batched here (in
training, and for evaluation: ``cohort.evaluate_grouped``), and the members' optimizers step as one
(``merge_optimizers``, at the end). At every step ``PopulationNet.forward`` concatenates the
members' weights (a differentiable ``cat``, so each member's gradients land on its own parameters)
and runs:

- a ``Conv2d`` as one grouped convolution over the members' channels, side by side
  (activations are ``[batch, K x channels, H, W]``, channels_last);
- a ``Linear`` as one batched matrix product (activations ``[K, batch, features]``);
- parameter-free element-wise layers, pooling, ``Flatten`` and a final ``LogSoftmax`` on the whole
  batch at once (they act on each member's channels or rows alone);
- any other layer (dropout, batch norm, a container) per member: the member's own module on its own
  activations, laid out exactly as in a solo run (channels_last), and, in training, with torch's
  global RNG holding that member's stream (``MemberRNG``), so that its dropout masks are the very
  masks its solo run draws.

The members' losses are summed before one backward pass: member k's gradients are d loss_k / d
theta_k, its solo gradients, up to float rounding (grouped kernels sum in another order: measured
within 1e-5 relative in fp32, ``tests/test_population.py``). ``signature`` says whether a model can
join a population and which models can share one (the same layers with the same shapes).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

MEMORY_FORMAT = torch.channels_last
# Layers without parameters that act element by element: the same function for every member.
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus, nn.Identity,
               nn.Hardtanh, nn.ReLU6, nn.Mish)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def signature(model: nn.Module) -> tuple | None:
    """What members must share to train as one population (layer names, types, shapes and settings),
    or None when this model cannot be batched at all (not an ``nn.Sequential``)."""
    if not isinstance(model, nn.Sequential):
        return None
    sig = []
    for name, m in model.named_children():
        shapes = tuple((n, tuple(p.shape)) for n, p in m.named_parameters())
        buffers = tuple((n, tuple(b.shape)) for n, b in m.named_buffers())
        sig.append((name, type(m).__qualname__, repr(m), shapes, buffers))
    return tuple(sig)


class MemberRNG:
    """Each member's global-RNG stream (its dropout masks), swapped in while its own code runs.

    A solo run draws its dropout masks from torch's global RNG, seeded for it once its model is built
    (``streams.Streams.start_dropout``); ``capture`` keeps that state per member, ``stream(k)`` puts it
    in place for member k and keeps where k left it."""

    def __init__(self, device: torch.device):
        self.device = device
        self.states: list[dict] = []

    def _get(self) -> dict:
        state = {"global_cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["global_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _set(self, state: dict) -> None:
        torch.set_rng_state(state["global_cpu"])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state["global_cuda"], self.device)

    def capture(self) -> None:
        """After a member is built: its stream starts at the global RNG's state now."""
        self.states.append(self._get())

    @contextlib.contextmanager
    def stream(self, k: int):
        outside = self._get()
        self._set(self.states[k])
        try:
            yield
        finally:
            self.states[k] = self._get()
            self._set(outside)


class PopulationNet:
    """The batched forward pass of ``members`` (``nn.Sequential`` models with one ``signature``)."""

    def __init__(self, members: list[nn.Module], rng: MemberRNG | None = None):
        sigs = {signature(m) for m in members}
        if None in sigs or len(sigs) != 1:
            raise ValueError("a population needs nn.Sequential members of one shape (training.population.signature)")
        self.members, self.rng = members, rng
        self.layers = [[m for _, m in member.named_children()] for member in members]

    def forward(self, inputs: list[torch.Tensor], ids: list[int]) -> list[torch.Tensor]:
        """Each member's output for its own input batch. ``ids``: the members taking part (indices
        into ``members`` and into ``rng``, which only a forward pass in training mode needs), in the
        order of ``inputs``."""
        training = self.members[ids[0]].training
        x, flat = torch.cat(inputs, dim=1).contiguous(memory_format=MEMORY_FORMAT), False
        k = len(ids)
        for depth in range(len(self.layers[0])):
            mods = [self.layers[i][depth] for i in ids]
            m = mods[0]
            if isinstance(m, nn.Conv2d) and not flat and m.padding_mode == "zeros":
                weight = torch.cat([c.weight for c in mods])
                bias = torch.cat([c.bias for c in mods]) if m.bias is not None else None
                x = F.conv2d(x, weight, bias, m.stride, m.padding, m.dilation, m.groups * k)
            elif isinstance(m, nn.Linear) and flat:
                weight = torch.stack([lin.weight for lin in mods]).transpose(1, 2)
                x = torch.baddbmm(torch.stack([lin.bias for lin in mods]).unsqueeze(1), x, weight) \
                    if m.bias is not None else torch.bmm(x, weight)
            elif isinstance(m, ELEMENTWISE) or (isinstance(m, POOLS) and not flat):
                x = m(x)
            elif isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
                if not flat:
                    b, kc, h, w = x.shape
                    x, flat = x.view(b, k, kc // k, h, w).transpose(0, 1).reshape(k, b, -1), True
            elif isinstance(m, nn.LogSoftmax) and flat and m.dim in (1, -1):
                x = F.log_softmax(x, dim=-1)
            else:
                x, flat = self._each(mods, x, flat, ids, training)
        if not flat:
            raise ValueError("a population's output must be one row per image (end with Flatten/Linear)")
        return list(x.unbind(0))

    def _each(self, mods: list[nn.Module], x: torch.Tensor, flat: bool, ids: list[int],
              training: bool) -> tuple[torch.Tensor, bool]:
        """A layer the population cannot batch: each member's own module on its own activations, in
        its solo layout, drawing from its own RNG stream."""
        k = len(ids)
        if flat:
            parts = list(x.unbind(0))
        else:
            c = x.shape[1] // k
            parts = [x[:, j * c:(j + 1) * c].contiguous(memory_format=MEMORY_FORMAT) for j in range(k)]
        outs = []
        for j, (m, part) in enumerate(zip(mods, parts)):
            with self.rng.stream(ids[j]) if training else contextlib.nullcontext():
                outs.append(m(part))
        if outs[0].dim() == 4:
            return torch.cat(outs, dim=1).contiguous(memory_format=MEMORY_FORMAT), False
        if outs[0].dim() == 2:
            return torch.stack(outs), True
        raise ValueError(f"a population cannot carry {outs[0].dim()}-d activations (layer {type(mods[0]).__name__})")


# Optimizers whose state is kept per parameter (``optimizer.state[p]``) and whose hyperparameters are
# all per parameter group: members' optimizers of one of these classes step as one.
MERGEABLE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop, torch.optim.Adagrad,
             torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam)


class _MembersState(dict):
    """A merged optimizer's ``state``: each parameter's state stays in its member's own optimizer (so a
    member's ``state_dict``, checkpoint and hooks see it as a solo run's would)."""

    def __init__(self, owners: dict):
        super().__init__()
        self._owners = owners

    def __missing__(self, p):
        return self._owners[p].state[p]


def merge_optimizers(optimizers: list[torch.optim.Optimizer]) -> list[torch.optim.Optimizer]:
    """The members' optimizers as few optimizers as torch allows: one per ``MERGEABLE`` class, whose
    parameter groups are the members' own group dicts (an LR schedule that sets a member's group sets
    it there too) and whose state is the members' (``_MembersState``); ``step()`` then runs each group
    as the member's own optimizer would (per group, ``foreach`` where torch picks it), in one call.
    Any other optimizer steps on its own. Rebuild it when the members change (after a resume, which
    replaces an optimizer's groups and state, or when a member stops: a frozen member's groups leave)."""
    by_class: dict[type, list[torch.optim.Optimizer]] = {}
    out = []
    for opt in optimizers:
        (by_class.setdefault(type(opt), []) if type(opt) in MERGEABLE else out).append(opt)
    for cls, opts in by_class.items():
        if len(opts) == 1:
            out.extend(opts)
            continue
        groups = [g for o in opts for g in o.param_groups]
        merged = cls([p for g in groups for p in g["params"]])
        merged.param_groups = groups
        merged.state = _MembersState({p: o for o in opts for g in o.param_groups for p in g["params"]})
        for o in opts:      # stepped by the merged optimizer: what torch's LR schedulers check (a warning)
            o._opt_called = True
        out.append(merged)
    return out
