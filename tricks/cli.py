"""The ``tricks`` command: list, ablation, figures, check.

Every user error is a ``TricksError``: printed as one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import Terminated, TricksError
from .specs.spec_values import parse_seeds

DEFAULT_SPEC = "benchmarks/backprop_tricks.toml"
# Where a study goes without --out: a folder of the user's own, never one of the committed studies in
# results/ (those are extended only by naming them with --out). Ignored by git.
DEFAULT_OUT_ROOT = Path("results") / "local"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130   # 128 + SIGINT, as shells report Ctrl-C
EXIT_TERMINATED = 143    # 128 + SIGTERM


def _positive(flag: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise TricksError(f"{flag} must be at least 1, got {value}")
    return value


def _non_negative(flag: str, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise TricksError(f"{flag} must be 0 or more, got {value}")
    return value


def _default_data_dir() -> str:
    return os.environ.get("TRICKS_DATA_DIR") or "./data"


def cmd_list(args) -> int:
    from .plugins import load_plugins
    from .specs.registry import TRICKS

    if args.spec:
        from .plugins import load_spec

        spec = load_spec(args.spec)
        print(f"spec {spec.name}: {spec.description}")
        print(f"  training: {spec.training.epochs} epochs, batch {spec.training.batch_size}, "
              f"seeds {','.join(map(str, spec.training.seeds))}, validation {spec.training.validation} images")
        if spec.design:
            d = spec.design
            print(f"  design: {d['kind']} over factors {', '.join(f['name'] for f in d['factors'])}: "
                  f"{len(d['matrix'])} variants" + (f", resolution {d['resolution']}" if d.get("resolution") else ""))
            for g in d.get("generators", []):
                print(f"    generator: {g}")
        for v in spec.variants:
            tricks = ", ".join(_fmt_trick(t) for t in v.tricks) or "(none)"
            print(f"  {v.name:<16} base={v.base or '-':<14} {tricks}")
        return 0
    load_plugins()
    for cls in TRICKS:
        print(f"{cls.name}: {cls.description}")
        print(f"    hooks: {', '.join(cls.claimed_hooks())}; version {cls.version}"
              + ("; needs a validation split (--validation N)" if cls.needs_validation else ""))
        for p in cls.params:
            print(f"    {p.name} = {p.default!r}  ({p.describe_range()}) {p.help}")
    return 0


def _fmt_trick(t: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in t.items() if k != "name")
    return f"{t['name']}({params})"


def cmd_ablation(args) -> int:
    if args.executor == "local" and args.workers != 1 and (os.cpu_count() or 1) > 1:
        from .running.forkserver import start as start_fork_server

        start_fork_server()   # first: it imports torch & co for the workers while this process starts up
    from .training.data import DataSource
    from .running.settings import PRECISION_CHOICES
    from .plugins import load_spec
    from .running.plan import StudyOptions
    from .running.study import run_study

    spec = load_spec(args.spec)
    seeds = parse_seeds(args.seeds, "--seeds") if args.seeds is not None else None
    if args.variants is not None and not [v for v in args.variants.split(",") if v.strip()]:
        raise TricksError("--variants is empty; name variants like baseline,norm_inputs (tricks list --spec FILE)")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    spec.select(variants)   # unknown names fail here, listing the valid ones
    if args.precision not in PRECISION_CHOICES:
        raise TricksError(f"--precision must be one of {', '.join(PRECISION_CHOICES)}")
    opts = StudyOptions(
        spec=spec, source=DataSource(args.dataset, args.data_dir or _default_data_dir()),
        out_dir=Path(args.out or DEFAULT_OUT_ROOT / spec.name), variants=variants, seeds=seeds,
        epochs=_positive("--epochs", args.epochs), train_subset=_positive("--train-subset", args.train_subset),
        validation=_non_negative("--validation", args.validation),
        precision=args.precision, device=args.device, workers=_positive("--workers", args.workers),
        threads=_positive("--threads", args.threads), replace=args.replace,
        progress=not args.no_progress, executor=args.executor, ray_address=args.ray_address,
        ray_cpus_per_run=args.ray_cpus_per_run, ray_gpus_per_run=args.ray_gpus_per_run)
    outcome = run_study(opts, on_wait=None if args.no_report else _import_report_stack_in_background)
    for path, why in outcome.corrupted.items():
        print(f"tricks: corrupted run file {path} ({why}): trained again", file=sys.stderr)
    diverged = outcome.diverged
    print(f"{outcome.planned} runs planned, {outcome.reused} reused from earlier, "
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
    if not args.no_report and outcome.finished:
        from .analysis.report import build_report

        build_report(outcome.out_dir)
        print(f"report: {outcome.out_dir / 'REPORT.md'}")
    return 1 if outcome.failed else 0


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


def _report_corrupted(data) -> None:
    for path, why in data.corrupted.items():
        print(f"tricks: corrupted run file {path}: {why}", file=sys.stderr)
    if data.corrupted:
        print(f"  ({len(data.corrupted)} file(s) left out; delete them and run 'tricks ablation' again to retrain "
              "those runs)", file=sys.stderr)


def cmd_figures(args) -> int:
    """Exit 0, or 1 when run files are corrupted (the report is still written and names them)."""
    from .analysis.report import build_report
    from .analysis.studydata import load_study

    data = load_study(Path(args.results))
    try:
        path = build_report(Path(args.results), data)
    except OSError as exc:    # a read-only or full results folder: one line, not a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        raise TricksError(f"cannot write the report into {args.results}: {exc.strerror or exc}{where}; "
                          "copy the folder somewhere writable and run 'tricks figures --results COPY'") from None
    print(f"report: {path}")
    _report_corrupted(data)
    return 1 if data.corrupted else 0


def cmd_check(args) -> int:
    import json

    from .analysis.regression import compare, describe_update, format_table, make_reference
    from .running.records import write_json
    from .analysis.studydata import load_study

    from .running.schema import REFERENCE, SchemaError, validate

    data = load_study(Path(args.results))
    _report_corrupted(data)
    ref_path = Path(args.reference)
    old, bad = None, None
    if ref_path.is_dir():
        raise TricksError(f"--reference {ref_path} is a directory; give the reference JSON file")
    if ref_path.is_file():
        try:
            old = json.loads(ref_path.read_text(encoding="utf-8"))
            validate(old, REFERENCE, f"reference {ref_path}")
        except (ValueError, SchemaError) as exc:
            bad = exc if isinstance(exc, SchemaError) else \
                TricksError(f"reference {ref_path} is not valid JSON ({exc}); re-create it with --update")
            old = None
    if args.update:
        try:
            new = make_reference(data)
        except ValueError as exc:
            raise TricksError(str(exc)) from None
        print(describe_update(old, new))
        write_json(ref_path, new)
        print(f"reference written: {ref_path}")
        return 0
    if bad is not None:
        raise bad
    if old is None:
        raise TricksError(f"no reference at {ref_path}; create one with 'make regression-update' "
                          "(tricks check --update)")
    result = compare(old, data)
    print(format_table(result))
    return 0 if result.passed else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tricks", description="Ablation benchmark of backprop tricks on CIFAR-10.")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="the registered tricks, or a spec's variants")
    ls.add_argument("--spec", help="a spec file: list its variants instead")
    ls.set_defaults(func=cmd_list)

    ab = sub.add_parser("ablation", help="train every (variant, seed) of a spec; skips finished runs")
    ab.add_argument("--spec", default=DEFAULT_SPEC, help=f"study spec (default {DEFAULT_SPEC})")
    ab.add_argument("--variants", help="comma-separated subset of the spec's variants (default: all)")
    ab.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2 (default: the spec's)")
    ab.add_argument("--epochs", type=int, help="epochs per run (default: the spec's)")
    ab.add_argument("--train-subset", type=int, help="train on a class-balanced subset of N images")
    ab.add_argument("--validation", type=int,
                    help="hold out a class-balanced N-image validation split of the training images "
                         "(default: the spec's, else 0); callbacks and metric-driven schedules read only it")
    ab.add_argument("--dataset", default="cifar10", help="cifar10 (torchvision download) or imagefolder")
    ab.add_argument("--data-dir", help="data directory (default: $TRICKS_DATA_DIR, else ./data)")
    ab.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto: cuda when there is one)")
    ab.add_argument("--workers", type=int, help="parallel runs (default: one per core on CPU, one per GPU)")
    ab.add_argument("--precision", default="auto",
                    help="auto (default: bf16 autocast where the device has native bf16, else fp32), fp32 or bf16")
    ab.add_argument("--threads", type=int, default=1,
                    help="intra-op CPU threads per run (default 1); part of each run's settings, since the "
                         "thread count changes a run's arithmetic")
    ab.add_argument("--out", help=f"results directory (default {DEFAULT_OUT_ROOT}/<spec name>; name a folder "
                                  "under results/ to extend a committed study)")
    ab.add_argument("--replace", action="store_true",
                    help="when the folder holds finished runs of the same (variant, seed) made with other "
                         "settings, move them to <out>/replaced/<time>/ and train anew (default: refuse)")
    ab.add_argument("--executor", default="local", choices=("local", "ray"),
                    help="local (default: a process pool on this machine) or ray (one Ray task per run)")
    ab.add_argument("--ray-address", help="Ray cluster host:port, 'auto' or ray://... (default: $RAY_ADDRESS, "
                                          "else a local Ray started for the study)")
    ab.add_argument("--ray-cpus-per-run", type=float, default=1.0, help="CPUs per Ray task (default 1)")
    ab.add_argument("--ray-gpus-per-run", type=float,
                    help="GPUs per Ray task (default: 1 on a cluster with GPUs when training on CUDA, else 0)")
    ab.add_argument("--no-progress", action="store_true", help="no progress bars")
    ab.add_argument("--no-report", action="store_true", help="do not render figures and REPORT.md at the end")
    ab.set_defaults(func=cmd_ablation)

    fg = sub.add_parser("figures", help="regenerate figures, tables and REPORT.md from stored runs (no training)")
    fg.add_argument("--results", required=True, help="a results directory written by 'tricks ablation'")
    fg.set_defaults(func=cmd_figures)

    ck = sub.add_parser("check", help="compare a CI-profile study's deltas with a reference; exit 1 on regression")
    ck.add_argument("--results", required=True, help="results directory of the CI-profile study")
    ck.add_argument("--reference", required=True, help="reference JSON (results/reference/ci_profile.json)")
    ck.add_argument("--update", action="store_true", help="re-baseline: write the reference from --results")
    ck.set_defaults(func=cmd_check)
    return p


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"tricks: warning: {message}\n"   # no Python source line: the message says what and where


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.formatwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except TricksError as exc:
        print(f"tricks: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:   # e.g. `tricks list | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"\ntricks: {what}; finished runs are saved. Run the same command again to resume.", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
