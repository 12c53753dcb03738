"""A variant's recipe: the baseline plus its tricks, with hooks applied in a fixed order.

``Recipe`` checks ownership when it is built (``specs.ownership``: a bad combination fails before
any training) and then hands ``training.build.build_run``, for one seed, every collaborator of a
run: input transform, model, optimizer, LR controller, criterion, per-step and evaluation hooks and
callbacks (see ``specs.base`` for the order and the contracts). Hooks nobody claims fall back to the
baseline: NLL on the log-softmax output, Adam with PyTorch's defaults, a constant LR, shuffled data,
no augmentation, one forward/backward pass per step, the trained weights evaluated as they are.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..specs.base import Trick
from ..specs.ownership import BASE_OPTIMIZER, BASE_OPTIMIZER_CLASS, Ownership, instantiate, optimizer_keys, \
    trick_versions  # noqa: F401 - re-exported for the running layer and the benchmarks
from ..specs.types import Batch, Budget, TrainSplit
from ..specs.models import DEFAULT_MODEL, MODELS
from . import models as _builtin_models  # noqa: F401 - registers tf_cnn, cifar10_3c3d, resnet8
from .schedule import LRController
from .streams import init_stream

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def nll(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The baseline training loss: mean negative log-likelihood of the log-softmax output, for class
    indices or for soft targets (a probability per class: the target-weighted NLL)."""
    if targets.dim() == 2:
        return -(targets * log_probs).sum(dim=1).mean()
    return F.nll_loss(log_probs, targets)


def one_pass(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
             loss_fn: LossFn) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline step's gradients: one forward and one backward pass."""
    loss, out = loss_fn(model, inputs, targets)
    loss.backward()
    return loss, out


def forward(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The baseline evaluation: the model's log-probabilities."""
    return model(inputs)


class ScaleTo01(nn.Module):
    """The baseline input transform: uint8 images are already divided by 255; nothing more."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _with_generator(hook: Callable) -> Callable[[nn.Module, Any], Any]:
    """``hook`` as (model, extra): a ``before_optimizer_step(model)`` ignores the generator, a
    ``modify_model(model)`` the sites."""
    takes = [p for p in inspect.signature(hook).parameters.values()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if len(takes) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in takes):
        return hook
    return lambda model, extra: hook(model)


@dataclass
class StepHooks:
    """The per-step and evaluation collaborators of the engine; the defaults are the baseline step."""
    criterion: Criterion = nll
    loss_terms: list[Callable[[nn.Module], torch.Tensor]] = field(default_factory=list)
    # (model, generator): the run's own generator for any random draw (never torch's global RNG,
    # which is the dropout masks' stream); a trick whose hook takes only (model) is called with it alone.
    before_optimizer_step: list[Callable[[nn.Module, torch.Generator | None], None]] = field(default_factory=list)
    augment: list[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = field(default_factory=list)
    augment_batch: list[Callable[[Batch, torch.Generator], Batch]] = field(default_factory=list)
    compute_gradients: Callable = one_pass
    after_optimizer_step: list[Callable[[nn.Module, torch.optim.Optimizer], None]] = field(default_factory=list)
    evaluation_model: Callable[[nn.Module, TrainSplit], nn.Module] | None = None
    predict: Callable[[nn.Module, torch.Tensor], torch.Tensor] = forward

    @property
    def changes_loss(self) -> bool:
        """Whether the training objective differs from the baseline NLL of the labels (then the NLL
        of the original labels is recorded too)."""
        return self.criterion is not nll or bool(self.loss_terms) or bool(self.augment_batch)

    @property
    def draws_augmentation(self) -> bool:
        return bool(self.augment) or bool(self.augment_batch)


@dataclass
class Recipe(Ownership):
    # -- builders, in hook order ------------------------------------------------------------
    def input_transform(self, train_images: torch.Tensor) -> nn.Module:
        owner = self._owner("input_transform")
        return owner.input_transform(train_images) if owner else ScaleTo01()

    def model(self, seed: int, num_classes: int, init: torch.Generator | None = None) -> nn.Module:
        """Seed ``seed`` fixes the default init, so variants without an init trick start identical;
        an init trick draws from ``init``. Without ``init`` (a test, a notebook), the init stream is
        made here from ``seed`` (``streams.init_stream``); a run's build passes its own."""
        if init is None:
            init = init_stream(seed)
        model_cls = MODELS.get(self.model_name)
        model = model_cls().build(num_classes)
        for t in self._sharing("modify_model"):
            model = _with_generator(t.modify_model)(model, model_cls.sites)
        owner = self._owner("init_weights")
        if owner:
            owner.init_weights(model, init)
        return model

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        owner = self._owner("param_groups")
        params = owner.param_groups(model) if owner else model.parameters()
        return self.optimizer_class()(params, **self.optimizer_settings())

    def lr_controller(self, optimizer: torch.optim.Optimizer, budget: Budget) -> LRController:
        sched, warm = self._owner("lr_schedule"), self._owner("warmup")
        return LRController(optimizer, sched.lr_schedule if sched else None, warm.warmup() if warm else None, budget)

    def step_hooks(self) -> StepHooks:
        crit, grads = self._owner("criterion"), self._owner("compute_gradients")
        evaluation, predict = self._owner("evaluation_model"), self._owner("predict")
        return StepHooks(criterion=crit.criterion() if crit else nll,
                         loss_terms=[t.loss_term for t in self._sharing("loss_term")],
                         before_optimizer_step=[_with_generator(t.before_optimizer_step)
                                                for t in self._sharing("before_optimizer_step")],
                         augment=[t.augment for t in self._sharing("augment")],
                         augment_batch=[t.augment_batch for t in self._sharing("augment_batch")],
                         compute_gradients=grads.compute_gradients if grads else one_pass,
                         after_optimizer_step=[t.after_optimizer_step for t in self._sharing("after_optimizer_step")],
                         evaluation_model=evaluation.evaluation_model if evaluation else None,
                         predict=predict.predict if predict else forward)

    def data_order(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """This epoch's order of the ``n`` training images (default: a permutation drawn from ``generator``)."""
        owner = self._owner("data_order")
        return owner.data_order(n, generator) if owner else torch.randperm(n, generator=generator)

    def callbacks(self) -> list:
        return [cb for t in self._sharing("callbacks") for cb in t.callbacks()]

    @property
    def evaluated(self) -> str:
        """Which weights evaluation sees: the name of the trick that supplies them, else "trained"."""
        owner = self._owner("evaluation_model")
        return owner.name if owner else "trained"

    def state_dict(self) -> list[dict[str, Any]]:
        """Every trick's own state (plain data), for the run's checkpoint."""
        return [t.state_dict() for t in self.tricks]

    def load_state_dict(self, states: list[dict[str, Any]]) -> None:
        for t, state in zip(self.tricks, states, strict=True):
            t.load_state_dict(state)


def build_recipe(variant: str, tricks: Sequence[Mapping[str, Any]], tuned_lr: float | None = None,
                 model: str = DEFAULT_MODEL) -> Recipe:
    """The variant's recipe on ``model`` (a registered model's name); at a ``[tuning]`` grid value
    ``tuned_lr`` (per optimizer step), with every learning rate of the variant scaled so that its peak
    is ``tuned_lr`` (``specs.tuning.at_lr``)."""
    if tuned_lr is None:
        return Recipe(variant, instantiate(tricks), model_name=model)
    from ..specs.tuning import at_lr

    scaled, optimizer_lr = at_lr(tricks, tuned_lr)
    return Recipe(variant, instantiate(scaled), optimizer_lr=optimizer_lr, model_name=model)


__all__ = ["Recipe", "StepHooks", "build_recipe", "nll", "trick_versions", "Trick"]
