"""``tricks ablation``: plan, train and report a study; with ``--until-halfwidth``, in rounds of seeds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import TricksError
from ..specs.spec_values import parse_seeds
from .commands import _default_data_dir, _non_negative, _positive
from .rounds import check as check_rounds, run_in_rounds, starting_seeds

DEFAULT_SPEC = "benchmarks/backprop_tricks.toml"
# Where a study goes without --out: a folder of the user's own, never one of the committed studies in
# results/ (those are extended only by naming them with --out). Ignored by git.
DEFAULT_OUT_ROOT = Path("results") / "local"


def cmd_ablation(args) -> int:
    # Every check that needs neither the spec nor the data comes first, before anything is started.
    seeds = parse_seeds(args.seeds, "--seeds") if args.seeds is not None else None
    if args.variants is not None and not [v for v in args.variants.split(",") if v.strip()]:
        raise TricksError("--variants is empty; name variants like baseline,norm_inputs (tricks list --spec FILE)")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    from ..running.settings import PRECISION_CHOICES

    if args.precision not in PRECISION_CHOICES:
        raise TricksError(f"--precision must be one of {', '.join(PRECISION_CHOICES)}")
    numbers = dict(epochs=_positive("--epochs", args.epochs),
                   train_subset=_positive("--train-subset", args.train_subset),
                   validation=_non_negative("--validation", args.validation),
                   workers=_positive("--workers", args.workers), threads=_positive("--threads", args.threads))
    check_rounds(args.until_halfwidth, args.max_seeds)
    if args.executor == "local" and args.workers != 1 and (os.cpu_count() or 1) > 1:
        from ..running import forkserver

        # Now: it imports torch & co for the workers while this process loads the spec and the data. It
        # holds no queue, semaphore or worker: those start only once every check of the study has passed.
        forkserver.start()
        try:
            return _ablation(args, seeds, variants, numbers)
        except BaseException:
            forkserver.stop()   # an error or an interrupt: the workers (if any) are gone; the server too, now
            raise
    return _ablation(args, seeds, variants, numbers)


def _ablation(args, seeds, variants, numbers: dict) -> int:
    from ..training.data import DataSource
    from ..plugins import load_spec
    from ..running.checks import check_max_seeds
    from ..running.plan import StudyOptions
    from ..running.study import run_study

    spec = load_spec(args.spec)
    chosen = [v.name for v in spec.select(variants)]   # unknown names fail here, listing the valid ones
    out_dir = Path(args.out or DEFAULT_OUT_ROOT / spec.name)
    if args.until_halfwidth is not None:
        check_max_seeds(out_dir, chosen, starting_seeds(seeds or spec.training.seeds), args.max_seeds)
    opts = StudyOptions(
        spec=spec, source=DataSource(args.dataset, args.data_dir or _default_data_dir()),
        out_dir=out_dir, variants=variants, seeds=seeds, **numbers, precision=args.precision, device=args.device,
        replace=args.replace, progress=progress_wanted(args), executor=args.executor, ray_address=args.ray_address,
        ray_cpus_per_run=args.ray_cpus_per_run, ray_gpus_per_run=args.ray_gpus_per_run)
    on_wait = None if args.no_report else _import_report_stack_in_background
    if args.until_halfwidth is None:
        outcome = run_study(opts, on_wait=on_wait, population=args.population)
        _summarize(outcome)
    else:
        outcome, _ = run_in_rounds(opts, lambda o: run_study(o, on_wait=on_wait, population=args.population),
                                   args.until_halfwidth, args.max_seeds, _summarize)
    if not args.no_report and (outcome.finished or args.until_halfwidth is not None):
        from ..analysis.report import build_report

        build_report(outcome.out_dir)
        print(f"report: {outcome.out_dir / 'REPORT.md'}")
    return 1 if outcome.failed else 0


def progress_wanted(args) -> bool:
    """Bars when stderr is a terminal (or ``--progress`` forces them), never with ``--no-progress``; else
    one line per finished run (a log file gets no cursor codes)."""
    if getattr(args, "no_progress", False):
        return False
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


def _summarize(outcome) -> None:
    """The study's last line, and the runs that diverged or failed, on stderr."""
    for path, why in outcome.corrupted.items():
        print(f"tricks: corrupted run file {path} ({why}): trained again", file=sys.stderr)
    diverged = outcome.diverged
    whole = getattr(outcome, "in_folder", 0)
    print(f"{outcome.planned} runs planned" + (f" of {whole} in the folder" if whole > outcome.planned else "")
          + f", {outcome.reused} reused from earlier, "
          f"{len(outcome.finished)} trained ({len(diverged)} of them diverged), {len(outcome.failed)} failed "
          f"in {outcome.wall_seconds:.0f} s -> {outcome.out_dir / 'runs.csv'}")
    for stem in diverged:
        print(f"  DIVERGED {stem}: its training loss became non-finite; it counts as a finished run "
              "(the report shows it; a lower learning rate may help)", file=sys.stderr)
    for stem, reason in outcome.failed.items():
        print(f"  FAILED {stem}: {reason.splitlines()[0]}", file=sys.stderr)
    if outcome.failed:
        print(f"  (reasons and tracebacks: {outcome.out_dir / 'failures.json'}; run the same command again "
              "to retry them)", file=sys.stderr)


def _import_report_stack_in_background() -> None:
    """Import the scoring stack (scikit-learn, needed at the first finished run) and the report's
    modules (pandas, scipy, statsmodels, matplotlib: ~1.5 s) while the study waits on its workers
    (which are still starting then), not after the last run."""
    import threading

    def work():
        try:
            import tricks.training.metrics  # noqa: F401
            import tricks.analysis.report  # noqa: F401
        except Exception:   # noqa: BLE001 - the report imports it again and reports any error
            pass
    threading.Thread(target=work, name="import-report-stack", daemon=True).start()


