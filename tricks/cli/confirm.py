"""``tricks confirm``: pre-registered claims trained on fresh seeds, then ``CONFIRM.md``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import TricksError


def add_parser(sub) -> None:
    cf = sub.add_parser("confirm", help="test a claims file's pre-registered claims on fresh seeds "
                                        "(trains what they need, then writes CONFIRM.md)")
    cf.add_argument("--claims", help="claims file (TOML; benchmarks/claims.toml); needed unless --report-only")
    cf.add_argument("--seeds", help="fresh seeds, e.g. 5-14 (none the exploratory studies used); needed unless "
                                    "--report-only")
    cf.add_argument("--out", required=True, help="the confirmation's folder (results/confirm)")
    cf.add_argument("--dataset", default="cifar10", help="as for 'tricks ablation'")
    cf.add_argument("--data-dir", help="data directory (default: $TRICKS_DATA_DIR, else ./data)")
    cf.add_argument("--precision", default="auto",
                    help="auto (bf16 where native, else fp32; a folder keeps its registered one), fp32 or bf16")
    cf.add_argument("--device", default="auto", help="auto, cpu or cuda")
    cf.add_argument("--workers", type=int, help="parallel runs (default: one per core on CPU)")
    cf.add_argument("--threads", type=int, default=1, help="intra-op CPU threads per run (default 1)")
    cf.add_argument("--allow-dirty", action="store_true",
                    help="train from a tree with uncommitted changes (a trial: the report says it is not a "
                         "registered confirmation)")
    cf.add_argument("--report-only", action="store_true", help="write CONFIRM.md from the stored runs; train nothing")
    cf.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a terminal")
    cf.add_argument("--no-progress", action="store_true", help="no progress bars: one line per finished run")
    cf.set_defaults(func=cmd_confirm)


def cmd_confirm(args) -> int:
    from ..specs.claims import load_claims
    from ..specs.spec_values import parse_seeds

    out = Path(args.out)
    if args.report_only:
        if not (out / "preregistration.json").is_file():
            raise TricksError(f"{out} holds no confirmation (no preregistration.json); start one with "
                              "'tricks confirm --claims FILE --seeds A-B --out DIR'")
        return _report(out)
    if args.claims is None or args.seeds is None:
        raise TricksError("tricks confirm needs --claims FILE and --seeds (e.g. 5-14), or --report-only")
    claims = load_claims(args.claims)
    seeds = parse_seeds(args.seeds, "--seeds")
    if (os.cpu_count() or 1) > 1 and args.workers != 1:
        from ..running.forkserver import start as start_fork_server

        start_fork_server()
    from ..running.confirm import run_confirmation
    from ..running.device import bf16_is_native, choose_precision, resolve_device
    from ..running.plan import StudyOptions
    from ..running.study import run_study
    from ..training.data import DataSource
    from .ablation import progress_wanted
    from .commands import _default_data_dir, _positive

    device = resolve_device(args.device)
    precision = _registered_precision(out) if args.precision == "auto" else None
    precision = precision or choose_precision(args.precision, bf16_is_native(device))
    base = StudyOptions(spec=None, source=DataSource(args.dataset, args.data_dir or _default_data_dir()),
                        out_dir=out, precision=precision, device=args.device,
                        workers=_positive("--workers", args.workers), threads=_positive("--threads", args.threads),
                        progress=progress_wanted(args))
    outcome = run_confirmation(claims, base, seeds, allow_dirty=args.allow_dirty,
                               run_study=lambda o: run_study(o, population=0),
                               on_notice=lambda m: print(f"tricks: {m}", file=sys.stderr, flush=True))
    print(f"confirmation: {outcome.planned} runs planned over {len(seeds)} seeds, {outcome.reused} reused, "
          f"{outcome.trained} trained, {len(outcome.failed)} failed in {outcome.wall_seconds:.0f} s"
          + (f"; seeds left for another machine: {', '.join(map(str, outcome.deferred))}" if outcome.deferred else ""))
    for stem, reason in outcome.failed.items():
        print(f"  FAILED {stem}: {reason.splitlines()[0]}", file=sys.stderr)
    code = _report(out)
    return 1 if outcome.failed else code


def _registered_precision(out: Path) -> str | None:
    import json

    from ..running.confirm_plan import PREREGISTRATION

    try:
        return json.loads((out / PREREGISTRATION).read_text(encoding="utf-8")).get("precision")
    except (OSError, ValueError):
        return None


def _report(out: Path) -> int:
    from ..analysis.confirm_report import build_confirm_report

    try:
        path = build_confirm_report(out)
    except OSError as exc:
        raise TricksError(f"cannot write the confirmation report into {out}: {exc.strerror or exc}") from None
    print(f"report: {path}")
    return 0
