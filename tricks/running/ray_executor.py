"""The Ray executor: each (variant, seed) run is one plain Ray task; the driver writes the records.

Ray is imported only here, and only when ``--executor ray`` is chosen. The cluster is the one at
``--ray-address`` (or ``RAY_ADDRESS``); without either, a local Ray is started for the study and
shut down after it. Each task asks for ``cpus_per_run`` CPUs (default 1) and, when it trains on CUDA,
``gpus_per_run`` GPUs (default 1/``device.RUNS_PER_GPU``: several runs share a GPU); the run trains on its
own settings' intra-op thread count (``--threads``, default 1), as with the local executor, so the
executor never changes the numbers.

**Device and precision are resolved where runs execute**, not on the driver (whose machine may have
no GPU, or another CPU): ``resolve`` sends one probe task with a run's resources, and the device kind
(``--device auto``: CUDA when the cluster has GPUs) and ``--precision auto`` follow what its node sees.
An explicit ``--device cpu`` is never overridden: asking for GPUs with it is refused. A task on CUDA
runs in a fresh worker process (``max_calls=1``), so a CUDA error that breaks a process's CUDA context
never reaches another run.

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
from .device import DEVICES, RUNS_PER_GPU, bf16_is_native
from .cohorts import Cohort, members, run_job
from .executors import CRASHED, JobSink, fail
from .runner import RunContext
from .settings import RunSettings

INSTALL_HINT = "pip install 'backprop-tricks[ray]' (or pip install ray)"
PROBE_TIMEOUT = 300.0     # seconds the probe task may wait for a node with a run's resources


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


def _probe(kind: str) -> dict:
    """Runs inside a Ray worker with a run's resources: what that node can train on."""
    import ray
    import torch

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if kind == "cuda" and cuda else "cpu")
    return {"cuda": cuda, "bf16_native": bf16_is_native(device), "node": ray.util.get_node_ip_address(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


def _ray_task(job: RunSettings | Cohort, dataset, others: dict, source: DataSource, device: str, threads: int):
    """Runs inside a Ray worker: one run (or a cohort), its record(s) returned to the driver (which
    writes them)."""
    import ray
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise TricksError(f"{job.stem} asked Ray for a GPU, but torch sees none on node "
                          f"{ray.util.get_node_ip_address()}")
    torch.set_num_threads(threads)
    info = {"kind": "ray", "ray": ray.__version__, "node_id": ray.get_runtime_context().get_node_id(),
            "node": ray.util.get_node_ip_address()}
    quiet = lambda stem: (lambda kind, payload: None)   # noqa: E731 - no progress from a cluster's tasks
    return run_job(job, RunContext(source, device, dataset, others=dict(others)), quiet, executor=info)


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
        self.others: dict = {}      # DataSource -> Dataset: workloads' own datasets (set by the study)
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self._gpus = None       # GPUs per task, once ``resolve`` has decided the device
        self._owns = False      # whether this executor started Ray (and must shut it down)

    def resolve(self, requested: str) -> tuple[str, bool]:
        """(the device kind runs train on, whether it runs bf16 natively), decided where they execute:
        one probe task with a run's resources reports what its node sees. ``auto`` is CUDA when the
        cluster has GPUs (and ``--ray-gpus-per-run`` is not 0); an explicit ``cpu`` is never overridden."""
        if requested not in DEVICES:
            raise TricksError(f"unknown device {requested!r}; valid: {', '.join(DEVICES)}")
        asked = self.gpus_per_run
        if requested == "cpu" and asked:
            raise TricksError(f"--ray-gpus-per-run {asked:g} asks for GPUs, but --device cpu trains on the CPU; "
                              "leave one of the two out")
        self._start()
        cluster_gpus = self.ray.cluster_resources().get("GPU", 0)
        cuda = requested == "cuda" or (requested == "auto" and cluster_gpus > 0 and asked != 0)
        if cuda and cluster_gpus == 0:
            raise TricksError(f"--device cuda: the Ray cluster ({self.address or 'local'}) has no GPUs")
        if cuda and asked == 0:
            raise TricksError("--device cuda with --ray-gpus-per-run 0: a run on CUDA needs a share of a GPU")
        self._gpus = (asked if asked is not None else 1.0 / RUNS_PER_GPU) if cuda else 0.0
        kind = "cuda" if cuda else "cpu"
        probe = self.ray.remote(_probe).options(num_cpus=self.cpus_per_run, num_gpus=self._gpus, max_retries=0)
        try:
            info = self.ray.get(probe.remote(kind), timeout=PROBE_TIMEOUT)
        except self.ray.exceptions.GetTimeoutError:
            raise TricksError(f"no Ray node could start a task with {self.cpus_per_run:g} CPU(s) and "
                              f"{self._gpus:g} GPU(s) within {PROBE_TIMEOUT:.0f} s") from None
        if cuda and not info["cuda"]:
            raise TricksError(f"a Ray task given {self._gpus:g} GPU(s) sees no CUDA device on node {info['node']}")
        return kind, bool(info["bf16_native"])

    def close(self) -> None:
        """Shut down the local Ray this executor started (if any)."""
        if self._owns:
            self._owns = False
            try:
                self.ray.shutdown()
            except Exception:          # noqa: BLE001 - never hide the study's own outcome behind Ray's teardown
                pass

    def _start(self) -> bool:
        """Connect (or start a local Ray); True when this executor started it and must shut it down."""
        ray = self.ray
        if ray.is_initialized():
            return False
        self._owns = True
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
        self._start()
        try:
            if self._gpus is None:   # not resolved by the study: the device the runs were planned for
                self.resolve(jobs[0].device if jobs else "cpu")
            data_ref, others_ref = ray.put(self.dataset), ray.put(self.others)
            cpu_task = ray.remote(_ray_task).options(num_cpus=self.cpus_per_run, num_gpus=0, max_retries=0)
            # CUDA: a fresh worker process per run, so that a CUDA error cannot break a later run's context
            gpu_task = ray.remote(max_calls=1)(_ray_task).options(num_cpus=self.cpus_per_run,
                                                                  num_gpus=self._gpus or 0, max_retries=0)
            refs = {(gpu_task if job.device == "cuda" else cpu_task).remote(job, data_ref, others_ref, self.source,
                                                                             job.device, job.threads): job
                    for job in jobs}
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
            self.close()

    def _collect(self, ref, job: RunSettings | Cohort, sink: JobSink) -> None:
        ray = self.ray
        try:
            record = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, TricksError):
                fail(job, str(cause), None, sink)
            else:
                what = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc).splitlines()[0]
                fail(job, what, str(exc) or traceback.format_exc(), sink)
            return
        except ray.exceptions.RayError as exc:   # the worker died (killed, out of memory, segfault), node lost
            fail(job, f"{CRASHED}: {type(exc).__name__}", str(exc), sink)
            return
        for run, rec in zip(members(job), record if isinstance(job, Cohort) else [record], strict=True):
            sink.record(run, rec)
