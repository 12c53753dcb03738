"""The Ray executor: each (variant, seed) run is one plain Ray task; the driver writes the records.

Ray is imported only here, and only when ``--executor ray`` is chosen. The cluster is the one at
``--ray-address`` (or ``RAY_ADDRESS``); without either, a local Ray is started for the study and
shut down after it. Each task asks for ``cpus_per_run`` CPUs (default 1) and, on a cluster with
GPUs, ``gpus_per_run`` GPUs (default 1); the run trains on its own settings' intra-op thread count
(``--threads``, default 1), as with the local executor, so the executor never changes the numbers.

**The data.** The driver decodes (or loads from its cache) the dataset once and puts the decoded
uint8 tensors into Ray's object store (``ray.put``: CIFAR-10 is 150 MB + 0.5 MB of labels). Each task
reads them from its node's object store, one copy per task (a fraction of a second), instead of
every worker decoding 60,000 JPEGs (tens of seconds) or every node needing the image folder and a
cache: the cluster only needs the package, not the data.

Crashes: tasks run with ``max_retries=0``, so a task whose worker dies is reported as crashed with
its variant and seed while the others finish. Ctrl-C or SIGTERM ends the driver's Ray job, and Ray
kills the job's workers; finished runs are already written. Same results, resume and failure handling as the local pool.
"""

from __future__ import annotations

import os
import socket
import traceback

from ..errors import TricksError
from ..training.data import DataSource
from .executors import CRASHED, JobSink
from .runner import RunContext, run_one
from .settings import RunSettings

INSTALL_HINT = "pip install 'backprop-tricks[ray]' (or pip install ray)"


def require_ray():
    """The ``ray`` module, or a one-line ``TricksError`` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise TricksError(f"--executor ray needs Ray, which is not installed ({exc}); {INSTALL_HINT}") from None
    return ray


def check_address(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast, in one line, when a host:port address cannot be reached (Ray itself waits a long time)."""
    if not address or address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise TricksError(f"--ray-address {address!r} must be host:port (e.g. 10.0.0.5:6379), 'auto' or ray://...")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise TricksError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); is 'ray start "
                          "--head' running there? (or leave --ray-address out to start a local Ray)") from None


def _ray_task(job: RunSettings, dataset, source: DataSource, device: str, threads: int) -> dict:
    """Runs inside a Ray worker: one run, its record returned to the driver (which writes it)."""
    import ray
    import torch

    torch.set_num_threads(threads)
    info = {"kind": "ray", "ray": ray.__version__, "node_id": ray.get_runtime_context().get_node_id(),
            "node": ray.util.get_node_ip_address()}
    return run_one(job, RunContext(source, device, dataset), executor=info)


class RayExecutor:
    def __init__(self, source: DataSource, device, address: str | None = None, cpus_per_run: float = 1.0,
                 gpus_per_run: float | None = None, dataset=None):
        self.ray = require_ray()
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        check_address(self.address)
        if cpus_per_run <= 0:
            raise TricksError(f"--ray-cpus-per-run must be positive, got {cpus_per_run}")
        if gpus_per_run is not None and gpus_per_run < 0:
            raise TricksError(f"--ray-gpus-per-run must be 0 or more, got {gpus_per_run}")
        self.source, self.device, self.dataset = source, device, dataset
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run

    def _start(self) -> bool:
        """Connect (or start a local Ray); True when this executor started it and must shut it down."""
        ray = self.ray
        if ray.is_initialized():
            return False
        # A local Ray started for the study runs its workers at the study's own priority: Ray's default
        # worker niceness (15) lets any other process on the machine take the CPU from the study's runs
        # (measured here: 4x slower next to one other nice-10 job). A cluster keeps its own settings.
        local = {"_system_config": {"worker_niceness": 0}} if self.address is None else {}
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, ignore_reinit_error=True, **local)
        except Exception as exc:   # ConnectionError, RuntimeError...: one line, not Ray's traceback
            raise TricksError(f"cannot start or join Ray (address {self.address or 'local'}): "
                              f"{type(exc).__name__}: {exc}") from None
        return True

    def run(self, jobs: list[RunSettings], sink: JobSink) -> None:
        ray = self.ray
        started = self._start()
        try:
            gpus = self.gpus_per_run
            if gpus is None:
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 and self.device.type == "cuda" else 0.0
            device = "cuda" if gpus > 0 else "cpu"
            data_ref = ray.put(self.dataset)
            task = ray.remote(_ray_task).options(num_cpus=self.cpus_per_run, num_gpus=gpus, max_retries=0)
            refs = {task.remote(job, data_ref, self.source, device, job.threads): job for job in jobs}
            pending = list(refs)
            # Interrupted (Ctrl-C, SIGTERM): the exception leaves this loop; finished runs are already
            # written. The runs still in flight are not cancelled one by one: ending the driver's Ray job
            # (ray.shutdown below, or this process exiting when it joined a cluster) makes Ray kill the
            # job's workers. ray.cancel(force=True) raced with tasks completing at that moment and crashed
            # Ray's core worker (task_manager.cc "Tried to complete task that was not pending", exit 1
            # instead of 130), so the interrupt is left to the job's teardown.
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in done:
                    self._collect(ref, refs[ref], sink)
        finally:
            if started:
                try:
                    ray.shutdown()
                except Exception:          # noqa: BLE001 - never hide the study's own outcome behind Ray's teardown
                    pass

    def _collect(self, ref, job: RunSettings, sink: JobSink) -> None:
        ray = self.ray
        try:
            record = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, TricksError):
                sink.failure(job, str(cause), None)
            else:
                what = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc).splitlines()[0]
                sink.failure(job, what, str(exc) or traceback.format_exc())
            return
        except ray.exceptions.RayError as exc:   # the worker died (killed, out of memory, segfault), node lost
            sink.failure(job, f"{CRASHED}: {type(exc).__name__}", str(exc))
            return
        sink.record(job, record)
