"""The speed levers keep the numbers: pooling before a monotone activation (bit-identical outputs
and gradients), workers forked from a preloaded fork server that see the study's current sys.path
and environment, a dataset mapped from the cache its study process loaded, and workers started
early that are stopped when nothing runs."""

import os
import time
from collections import OrderedDict

import pytest
import torch
from torch import nn

from tricks.cli import main
from tricks.running import forkserver
from tricks.running.executors import LocalExecutor
from tricks.running.plan import StudyOptions
from tricks.running.study import run_study
from tricks.plugins import load_spec
from tricks.training.data import DataSource, load_cached, load_dataset
from tricks.training.model import baseline_net, insert_after, pool_before_activation

from .conftest import STUDY_SPEC, plugin_spec


def names(model):
    return [n for n, _ in model.named_children()]


def test_pools_move_in_front_of_the_activation_they_follow():
    m = pool_before_activation(baseline_net())
    assert names(m)[:7] == ["conv1", "pool1", "relu1", "conv2", "pool2", "relu2", "conv3"]
    assert names(m)[7:] == ["relu3", "flatten", "fc1", "relu4", "fc2", "log_softmax"]   # no pool after them
    assert sorted(m.state_dict()) == sorted(baseline_net().state_dict())


def test_a_layer_between_activation_and_pool_keeps_the_pair_in_order():
    m = insert_after(baseline_net(), "relu1", "drop_relu1", nn.Dropout(0.2))
    out = pool_before_activation(m)
    assert names(out)[:4] == ["conv1", "relu1", "drop_relu1", "pool1"]     # dropout still sees pre-pool maps
    assert names(out)[4:7] == ["conv2", "pool2", "relu2"]
    for act in (nn.GELU(), nn.Tanh(), nn.Sigmoid()):    # not monotone, or ties with a nonzero derivative
        seq = nn.Sequential(OrderedDict([("act", act), ("pool", nn.MaxPool2d(2))]))
        assert names(pool_before_activation(seq)) == ["act", "pool"]
    other = nn.Linear(3, 3)
    assert pool_before_activation(other) is other


def test_pool_first_gives_the_same_outputs_and_gradients_bit_for_bit():
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict([("conv", nn.Conv2d(3, 8, 3)), ("act", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
                                     ("flat", nn.Flatten()), ("fc", nn.Linear(8 * 15 * 15, 4))]))
    fast = pool_before_activation(net)
    assert names(fast)[1:3] == ["pool", "act"]
    x = torch.randn(16, 3, 32, 32) * 4
    x[0] = -1.0                                  # an all-negative image: pooling windows of ReLU zeros (ties)
    grads = []
    for model in (net, fast):
        model.zero_grad()
        out = model(x)
        out.square().sum().backward()
        grads.append((out.detach().clone(), [p.grad.clone() for p in model.parameters()]))
    assert torch.equal(grads[0][0], grads[1][0])
    assert all(torch.equal(a, b) for a, b in zip(grads[0][1], grads[1][1]))


def test_a_worker_reads_the_dataset_from_the_cache_file_its_study_loaded(image_folder, tmp_path):
    source = DataSource("imagefolder", str(image_folder))
    first = load_dataset(source, cache_dir=tmp_path / "cache", progress=False)      # decoded, cache written
    again = load_dataset(source, cache_dir=tmp_path / "cache", progress=False)      # read from the cache
    assert first.cache_file and first.cache_file == again.cache_file
    mapped = load_cached(source, first.cache_file, first.checksum)
    assert mapped is not None and mapped.checksum == first.checksum and mapped.classes == first.classes
    assert torch.equal(mapped.train_x, first.train_x) and torch.equal(mapped.test_y, first.test_y)
    assert load_cached(source, first.cache_file, "0" * 64) is None                  # another dataset's checksum
    assert load_cached(source, str(tmp_path / "missing.pt"), first.checksum) is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a zombie (exited, not yet reaped) counts as gone
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="checks processes through /proc")
def test_workers_started_early_are_stopped_when_nothing_runs(image_folder):
    ex = LocalExecutor(DataSource("imagefolder", str(image_folder)), torch.device("cpu"), workers=2)
    ex.start()
    ex._wait_started()
    pids = list(ex._warm[3]._processes)
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    ex.close()
    deadline = time.time() + 20
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)
    assert ex._warm is None


ENV_PLUGIN = '''
import os
from tricks.errors import TricksError
from tricks.specs.base import Trick
from tricks.specs.registry import register_trick


@register_trick
class NeedsEnv(Trick):
    name = "needs_env"
    description = "Fails unless TRICKS_TEST_MARK is set in the worker (a test plugin)."

    def modify_model(self, model):
        if os.environ.get("TRICKS_TEST_MARK") != "set-after-the-fork-server-started":
            raise TricksError("TRICKS_TEST_MARK is not the study's")
        return model
'''


def test_forked_workers_see_the_studys_current_sys_path_and_environment(image_folder, tmp_path, plugin_module,
                                                                        monkeypatch):
    forkserver.start()              # the server is up (and its sys.path and environment frozen) first
    plugin_module("env_plugin_mod", ENV_PLUGIN)          # a folder on sys.path the server never saw
    monkeypatch.setenv("TRICKS_TEST_MARK", "set-after-the-fork-server-started")
    spec = plugin_spec(tmp_path, "env", "env_plugin_mod", '''
        [[variants]]
        name = "marked"
        tricks = [{ name = "needs_env" }]
    ''')
    waits = []
    opts = StudyOptions(spec=load_spec(spec), source=DataSource("imagefolder", str(image_folder)),
                        out_dir=tmp_path / "res", workers=2, progress=False, device="cpu")
    outcome = run_study(opts, on_wait=lambda: waits.append(1))
    assert outcome.failed == {} and sorted(outcome.finished) == ["marked__seed0", "marked__seed1"]
    assert waits == [1]                                   # handed to workers once: the hook ran once
    again = run_study(StudyOptions(spec=load_spec(spec), source=DataSource("imagefolder", str(image_folder)),
                                   out_dir=tmp_path / "res2", workers=1, progress=False, device="cpu"),
                      on_wait=lambda: waits.append(2))
    assert again.failed == {} and waits == [1]             # in-process: nothing to wait on, no hook


def test_the_cli_exits_with_its_status_through_the_fast_exit(image_folder, tmp_path):
    import subprocess
    import sys

    from .conftest import REPO

    r = subprocess.run([sys.executable, "-m", "tricks", "ablation", "--device", "cpu", "--spec", str(STUDY_SPEC),
                        "--variants", "nope",
                        "--dataset", "imagefolder", "--data-dir", str(image_folder), "--out", str(tmp_path / "o")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "nope" in r.stderr and r.stderr.count("\n") == 1
    r = subprocess.run([sys.executable, "-m", "tricks", "list"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "normalize_inputs" in r.stdout      # output flushed before os._exit
    assert main(["list"]) == 0
