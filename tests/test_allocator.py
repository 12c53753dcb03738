import subprocess
import sys
import textwrap

import pytest

from tricks.training.allocator import keep_freed_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt only")


def test_keep_freed_memory_is_accepted_and_idempotent():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True


def test_freed_activations_are_reused_without_page_faults():
    # The pattern of a training step: several multi-MB buffers allocated, written, all freed.
    code = textwrap.dedent("""
        import resource, torch
        from tricks.training.allocator import keep_freed_memory
        assert keep_freed_memory()
        def cycle():
            bufs = [torch.zeros(2_000_000) for _ in range(5)]   # 5 x 8 MB, every page written
            del bufs
        for _ in range(5):   # the first cycles grow the heap to its working size
            cycle()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            cycle()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    faults = int(out.stdout.strip().splitlines()[-1])
    touched_pages = 10 * 5 * 8_000_000 // 4096
    assert faults < touched_pages * 0.02, f"{faults} page faults for {touched_pages} pages written"


@pytest.mark.parametrize("precision,kept", [("fp32", True), ("bf16", False)])
def test_only_the_precisions_it_was_measured_to_help_keep_freed_memory(image_folder, tmp_path, monkeypatch,
                                                                       precision, kept):
    import torch

    import tricks.training.engine as engine
    from tricks.plugins import load_plugins
    from tricks.running.settings import RunSettings
    from tricks.training.data import DataSource, load_dataset
    from tricks.training.recipe import build_recipe

    load_plugins()
    calls = []
    monkeypatch.setattr(engine, "keep_freed_memory", lambda: calls.append(1) or True)
    ds = load_dataset(DataSource("imagefolder", str(image_folder)), cache_dir=tmp_path / "c", progress=False)
    s = RunSettings("t", "v", (), (), 0, 1, 16, None, precision, "imagefolder", ds.checksum)
    engine.train_run(build_recipe("v", ()), s, ds, torch.device("cpu"))
    assert bool(calls) is kept and engine.KEEP_FREED_MEMORY == ("fp32",)
