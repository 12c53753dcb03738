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
