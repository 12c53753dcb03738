"""The ``tricks`` command: list, ablation, figures, check.

Every user error is a ``TricksError``: printed as one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import Terminated, TricksError
from ..training.datasets import DATASETS, DEFAULT_DATASET   # light: the built-in datasets' registry
from .ablation import DEFAULT_OUT_ROOT, DEFAULT_SPEC, cmd_ablation
from .commands import cmd_check, cmd_figures, cmd_list
from .confirm import add_parser as add_confirm_parser

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130   # 128 + SIGINT, as shells report Ctrl-C
EXIT_TERMINATED = 143    # 128 + SIGTERM


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tricks", description="Ablation benchmark of backprop tricks on CIFAR-10.")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="the registered tricks, models or datasets, or a spec's variants")
    ls.add_argument("what", nargs="?", choices=("tricks", "models", "datasets"), default=None,
                    help="tricks (default): each with its hooks and parameters; models: each with its parameter "
                         "count, FLOPs per image and sites; datasets: each with its classes, sizes and checksum "
                         "source")
    ls.add_argument("--spec", help="a spec file: list its variants instead; with tricks or models: the ones its "
                                   "imports register (parameters, sizes) and those it uses; with datasets: the "
                                   "registered datasets, its imports' included")
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
    ab.add_argument("--dataset", default=DEFAULT_DATASET,
                    help=f"a registered dataset: {', '.join(DATASETS.names())}, or one the spec's imports register "
                         f"(default {DEFAULT_DATASET}; 'tricks list datasets' describes each)")
    ab.add_argument("--data-dir", help="data directory (default: $TRICKS_DATA_DIR, else ./data)")
    ab.add_argument("--device", default="auto",
                    help="auto, cpu or cuda (default auto: cuda when there is one; with --executor ray, when the "
                         "cluster has GPUs); the device kind is part of each run's settings")
    ab.add_argument("--workers", type=int,
                    help="parallel runs (default: one per core on CPU, 4 per GPU on CUDA; never more than the runs)")
    ab.add_argument("--precision", default="auto",
                    help="auto (default: bf16 autocast where the device has native bf16, else fp32), fp32 or bf16")
    ab.add_argument("--threads", type=int, default=1,
                    help="intra-op CPU threads per run (default 1); part of each run's settings, since the "
                         "thread count changes a run's arithmetic")
    ab.add_argument("--population", type=int, metavar="K",
                    help="population training: runs that share a network shape train as one batched model, in "
                         "cohorts of up to K runs (default: off, on CUDA until benchmarks/gpu_check.sh has "
                         "measured it, and on the CPU, where it does not pay; 0: off); whether a run trained in a population is part of its settings (docs/gpu.md)")
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
                    help="GPUs per Ray task (default: 0.25, 4 runs per GPU, when training on CUDA, else 0; "
                         "refused with --device cpu)")
    ab.add_argument("--until-halfwidth", type=float, metavar="H",
                    help="train in rounds, one more seed (every variant) per round, until every comparison's "
                         "95%% interval half-width is at most H accuracy points (needs --max-seeds)")
    ab.add_argument("--max-seeds", type=int, metavar="N", help="with --until-halfwidth: stop at N seeds at most")
    ab.add_argument("--progress", action="store_true",
                    help="progress bars even when stderr is not a terminal (default: bars on a terminal only; "
                         "in a log, one line per finished run)")
    ab.add_argument("--no-progress", action="store_true", help="no progress bars: one line per finished run")
    ab.add_argument("--no-report", action="store_true", help="do not render figures and REPORT.md at the end")
    ab.set_defaults(func=cmd_ablation)

    fg = sub.add_parser("figures", help="regenerate figures, tables and REPORT.md from stored runs (no training)")
    fg.add_argument("--results", required=True, help="a results directory written by 'tricks ablation'")
    fg.set_defaults(func=cmd_figures)

    add_confirm_parser(sub)

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
