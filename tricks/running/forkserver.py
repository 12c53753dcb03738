"""The fork server that local workers are forked from, and starting it early.

Where the platform has one (Linux, macOS), local workers are forked from ``multiprocessing``'s fork
server, which imports ``tricks.running.preload`` once (torch, the engine, scikit-learn, the tricks,
torch._dynamo: about 4.5 s of CPU here) instead of every worker importing it after a spawn. Started
with ``start()`` as the command begins, the server does that import on a spare core while the study
process loads the spec and the dataset. This module imports nothing heavy: it runs before torch is.
Elsewhere (Windows) workers are spawned.

The server holds no queue, semaphore or shared memory (the study's pool makes those, once its checks
have passed), so a command that stops early leaves nothing behind it; ``stop()`` then ends the server
at once, mid-import too, instead of letting it finish importing for workers that will never come.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal

PRELOAD = f"{__package__}.preload"


def available() -> bool:
    return "forkserver" in mp.get_all_start_methods()


def context():
    """The multiprocessing context local workers are started with."""
    if not available():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([PRELOAD])
    return ctx


def start() -> None:
    """Start the fork server now (it preloads in the background; this returns at once)."""
    if available():
        from multiprocessing import forkserver

        context()
        forkserver.ensure_running()


def stop() -> None:
    """End the fork server this process started, now (a command that stopped before any worker started)."""
    if not available():
        return
    from multiprocessing import forkserver

    server = forkserver._forkserver
    if server._forkserver_pid is None:
        return
    try:
        os.kill(server._forkserver_pid, signal.SIGTERM)   # it ignores only SIGINT; mid-import it just ends
    except ProcessLookupError:
        pass
    server._stop()   # closes its end of the "alive" pipe, reaps it, removes its socket
