"""Mixup, CutMix (``augment_batch``: soft targets) and test-time augmentation (``predict``).

The numerics are checked on tiny tensors against the formulas recomputed from the same generator
state; one tiny real run checks the wiring through the engine and that the run is reproducible.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tricks.errors import SpecError
from tricks.plugins import load_plugins

load_plugins()
# Not yet in BUILTIN_MODULES when this was written: importing registers them either way.
import tricks.plugins.cutmix as cutmix  # noqa: E402
import tricks.plugins.mixup as mixup  # noqa: E402
import tricks.plugins.tta as tta  # noqa: E402
from tricks.running.settings import RunSettings  # noqa: E402
from tricks.specs.registry import TRICKS  # noqa: E402
from tricks.specs.types import Batch  # noqa: E402
from tricks.training.data import DataSource, load_dataset  # noqa: E402
from tricks.training.engine import evaluate, train_one_epoch, train_run  # noqa: E402
from tricks.training.recipe import StepHooks, build_recipe, nll  # noqa: E402

SEED_HIGH = 2 ** 63 - 1


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_batch(n=6, classes=3, size=8, seed=0) -> Batch:
    x = torch.rand(n, 3, size, size, generator=gen(seed))
    return Batch(x, torch.arange(n) % classes, classes)


def one_hot(y, classes=3):
    return F.one_hot(y, classes).float()


# -- mixup -------------------------------------------------------------------------------------

def test_defaults_and_ranges():
    assert TRICKS.get("mixup")().p == {"alpha": 0.2}
    assert TRICKS.get("cutmix")().p == {"alpha": 1.0, "prob": 1.0, "switch_prob": None}
    assert TRICKS.get("cutmix")().to_spec() == {"name": "cutmix", "alpha": 1.0}    # as stored before prob
    assert TRICKS.get("tta")().p == {"flip": True}
    for bad in (-0.1, 1.5):
        for key in ("prob", "switch_prob"):
            with pytest.raises(SpecError, match=key):
                TRICKS.get("cutmix")(**{key: bad})
    for name in ("mixup", "cutmix"):
        assert TRICKS.get(name)(alpha=10).p["alpha"] == 10.0
        for bad in (0, -1.0, 10.5, True):
            with pytest.raises(SpecError, match="alpha"):
                TRICKS.get(name)(alpha=bad)
    with pytest.raises(SpecError, match="flip"):
        TRICKS.get("tta")(flip=1)
    assert {c.name: c.claimed_hooks() for c in (mixup.Mixup, cutmix.CutMix, tta.TTA)} == \
        {"mixup": ("augment_batch",), "cutmix": ("augment_batch",), "tta": ("predict",)}


def test_mixup_mixes_images_and_targets_by_the_lambda_and_permutation_the_generator_draws():
    batch = tiny_batch()
    out = TRICKS.get("mixup")(alpha=0.4).augment_batch(batch, gen(3))
    lam, perm = mixup.mix_parameters(6, 0.4, gen(3))
    # the draws, recomputed independently: one int64 seed for numpy's Beta, then the permutation
    g = gen(3)
    seed = int(torch.randint(0, SEED_HIGH, (), generator=g))
    assert lam == np.random.default_rng(seed).beta(0.4, 0.4)
    assert torch.equal(perm, torch.randperm(6, generator=g))
    assert 0 < lam < 1 and sorted(perm.tolist()) == list(range(6)) and perm.tolist() != list(range(6))
    x, y = batch.images, batch.targets
    assert torch.equal(out.images, lam * x + (1 - lam) * x[perm])
    assert torch.allclose(out.targets, lam * one_hot(y) + (1 - lam) * one_hot(y[perm]), atol=0, rtol=0)
    assert out.soft and out.num_classes == 3 and out.targets.shape == (6, 3)
    assert torch.allclose(out.targets.sum(1), torch.ones(6), atol=1e-6)
    assert torch.equal(batch.images, x) and batch.targets.dim() == 1      # the input batch is untouched


def test_nll_of_mixed_targets_is_the_lambda_weighted_nll_of_both_labels():
    batch = tiny_batch()
    lam, perm = mixup.mix_parameters(6, 1.0, gen(2))
    assert 0.2 < lam < 0.8, "this seed should weigh both labels"
    out = mixup.mix(batch, lam, perm)
    log_probs = F.log_softmax(torch.randn(6, 3, generator=gen(5)), dim=1)
    y = batch.targets
    want = lam * nll(log_probs, y) + (1 - lam) * nll(log_probs, y[perm])
    assert nll(log_probs, out.targets).item() == pytest.approx(want.item(), abs=1e-6)


def test_mixup_draws_only_from_the_runs_generator_and_repeats_with_its_seed():
    batch, trick = tiny_batch(), TRICKS.get("mixup")()
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    g = gen(7)
    first = trick.augment_batch(batch, g)
    second = trick.augment_batch(batch, g)             # the generator moved on: another mix
    assert torch.equal(torch.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    again = trick.augment_batch(batch, gen(7))
    assert torch.equal(again.images, first.images) and torch.equal(again.targets, first.targets)
    assert not torch.equal(second.images, first.images)


def test_mixup_composes_with_soft_targets_and_label_smoothing():
    trick = TRICKS.get("mixup")(alpha=1.0)
    twice = trick.augment_batch(trick.augment_batch(tiny_batch(), gen(1)), gen(2))   # soft in, soft out
    assert torch.allclose(twice.targets.sum(1), torch.ones(6), atol=1e-6) and (twice.targets >= 0).all()
    smoothed = TRICKS.get("label_smoothing")(eps=0.1).criterion()
    log_probs = F.log_softmax(torch.randn(6, 3, generator=gen(4)), dim=1)
    loss = smoothed(log_probs, twice.targets)
    assert math.isfinite(loss.item())
    # cross_entropy with probability targets smooths them towards uniform: (1 - eps) t + eps / C
    want = -(((1 - 0.1) * twice.targets + 0.1 / 3) * log_probs).sum(1).mean()
    assert loss.item() == pytest.approx(want.item(), abs=1e-6)


# -- cutmix ------------------------------------------------------------------------------------

def box_mask(box, size=8):
    top, bottom, left, right = box
    m = torch.zeros(size, size, dtype=torch.bool)
    m[top:bottom, left:right] = True
    return m


def test_cutmix_pastes_the_partners_box_and_weights_targets_by_the_pasted_area():
    batch = tiny_batch()
    torch_state = torch.get_rng_state()
    out = TRICKS.get("cutmix")().augment_batch(batch, gen(0))
    assert torch.equal(torch.get_rng_state(), torch_state)
    box, perm = cutmix.cutmix_parameters(8, 8, 6, 1.0, gen(0))
    # the draws, recomputed independently: one seed for numpy (lam, centre row, centre column), the permutation
    g = gen(0)
    rng = np.random.default_rng(int(torch.randint(0, SEED_HIGH, (), generator=g)))
    lam = rng.beta(1.0, 1.0)
    assert box == cutmix.cut_box(8, 8, lam, int(rng.integers(8)), int(rng.integers(8)))
    assert torch.equal(perm, torch.randperm(6, generator=g))
    mask = box_mask(box)
    area = int(mask.sum())
    assert 0 < area < 64, "this seed should paste a proper part of the image"
    x, y = batch.images, batch.targets
    assert torch.equal(out.images[:, :, mask], x[perm][:, :, mask])
    assert torch.equal(out.images[:, :, ~mask], x[:, :, ~mask])
    kept = 1 - area / 64
    assert cutmix.kept_fraction(box, 8, 8) == kept
    for i in range(6):
        changed = int((out.images[i] != x[i]).any(0).sum())
        j = int(perm[i])
        if j == i:
            assert changed == 0 and out.targets[i, y[i]] == 1.0
            continue
        assert changed == area                           # random pixels: every pasted one differs
        if y[j] != y[i]:
            assert out.targets[i, y[i]].item() == pytest.approx(1 - changed / 64, abs=1e-7)
            assert out.targets[i, y[j]].item() == pytest.approx(changed / 64, abs=1e-7)
    assert torch.allclose(out.targets, kept * one_hot(y) + (1 - kept) * one_hot(y[perm]), atol=0, rtol=0)
    again = TRICKS.get("cutmix")().augment_batch(batch, gen(0))
    assert torch.equal(again.images, out.images) and torch.equal(again.targets, out.targets)


def test_cut_box_sides_and_clipping_give_the_adjusted_lambda():
    # lam = 0.75: sides 8 * sqrt(0.25) = 4 in an 8x8 image
    assert cutmix.cut_box(8, 8, 0.75, 4, 4) == (2, 6, 2, 6)
    assert cutmix.kept_fraction((2, 6, 2, 6), 8, 8) == 0.75
    assert cutmix.cut_box(8, 8, 0.75, 0, 0) == (0, 2, 0, 2)           # clipped at the top-left corner
    assert cutmix.kept_fraction((0, 2, 0, 2), 8, 8) == 1 - 4 / 64
    assert cutmix.cut_box(8, 8, 0.75, 7, 7) == (5, 8, 5, 8)           # clipped at the bottom-right corner
    assert cutmix.kept_fraction((5, 8, 5, 8), 8, 8) == 1 - 9 / 64
    assert cutmix.cut_box(8, 8, 0.75, 0, 5) == (0, 2, 3, 7)           # clipped on one side only
    assert cutmix.cut_box(6, 6, 0.75, 3, 3) == (2, 5, 2, 5)           # odd side 3: exactly 3 rows and columns
    assert cutmix.cut_box(8, 8, 0.0, 4, 4) == (0, 8, 0, 8)            # lam 0: the whole image
    assert cutmix.cut_box(8, 8, 0.99, 4, 4)[0:2] == (4, 4)            # side 0: nothing pasted
    # a clipped box through paste: the targets carry the clipped area, not 1 - lam
    batch = tiny_batch()
    perm = torch.tensor([1, 2, 3, 4, 5, 0])
    out = cutmix.paste(batch, (0, 2, 0, 2), perm)
    y = batch.targets
    assert torch.equal(out.targets[torch.arange(6), y], torch.full((6,), 0.9375))
    assert torch.equal(out.targets[torch.arange(6), y[perm]], torch.full((6,), 0.0625))
    whole = cutmix.paste(batch, (0, 8, 0, 8), perm)
    assert torch.equal(whole.images, batch.images[perm]) and torch.equal(whole.targets, one_hot(y[perm]))


# -- test-time augmentation --------------------------------------------------------------------

def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5), nn.LogSoftmax(dim=1)).eval()


def test_tta_predicts_the_renormalized_mean_of_image_and_mirror():
    model, x = small_model(), torch.rand(4, 3, 8, 8, generator=gen(2))
    with torch.no_grad():
        plain, mirror = model(x), model(x.flip(3))
        got = TRICKS.get("tta")().predict(model, x)
        mean = (plain + mirror) / 2
        assert torch.allclose(got, mean - torch.logsumexp(mean, dim=1, keepdim=True), atol=1e-6)
        assert torch.allclose(got.exp().sum(1), torch.ones(4), atol=1e-6)   # a distribution, unlike the mean
        assert torch.equal(got.argmax(1), mean.argmax(1))
        assert not torch.allclose(got, plain, atol=1e-3)
        symmetric = torch.cat([x[..., :4], x[..., :4].flip(3)], dim=3)       # its own mirror: one pass's answer
        assert torch.allclose(TRICKS.get("tta")().predict(model, symmetric), model(symmetric), atol=1e-6)
        assert torch.equal(TRICKS.get("tta")(flip=False).predict(model, x), plain)


def test_tta_is_used_by_evaluation_and_never_by_training():
    hooks = build_recipe("v", [{"name": "tta"}]).step_hooks()
    model = build_recipe("v", []).model(0, 3).eval()
    imgs = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=gen(0))
    labels = torch.arange(10) % 3
    preds, loss = evaluate(model, imgs, labels, nn.Identity(), predict=hooks.predict)
    with torch.no_grad():
        x = imgs.float() / 255
        want = tta.mirrored_mean(model, x)
    assert torch.equal(preds, want.argmax(1)) and loss == pytest.approx(F.nll_loss(want, labels).item(), abs=1e-6)
    calls = []

    def spy(net, inputs):
        calls.append(inputs.shape[0])
        return net(inputs)

    train_one_epoch(model, torch.optim.Adam(model.parameters()), imgs, labels, nn.Identity(), 4, torch.arange(10),
                    hooks=StepHooks(predict=spy))
    assert calls == []


# -- one tiny run through the engine -----------------------------------------------------------

def test_a_tiny_run_with_mixup_and_tta_is_finite_records_both_losses_and_repeats(image_folder, tmp_path):
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)

    def run(tricks):
        s = RunSettings("t", "v", tricks, (), 0, 2, 8, None, "fp32", "imagefolder", ds.checksum, validation=15)
        torch.set_num_threads(1)
        r = train_run(build_recipe("v", tricks), s, ds, torch.device("cpu"))
        assert r["status"] == "ok" and r["epochs_run"] == 2
        return [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in r["history"]], r["predictions"]

    tricks = ({"name": "mixup", "alpha": 1.0}, {"name": "tta"})
    history, preds = run(tricks)
    for row in history:
        assert all(math.isfinite(row[k]) for k in ("train_loss", "train_nll", "val_loss", "test_loss"))
        assert row["train_nll"] != row["train_loss"]     # the objective is on mixed targets
    assert run(tricks) == (history, preds)
    # both batch augmentations together (shared hook), with a smoothed criterion on their soft targets
    both, _ = run(({"name": "mixup"}, {"name": "cutmix"}, {"name": "label_smoothing"}))
    assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["train_nll"]) for row in both)
