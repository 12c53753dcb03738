"""The commands other than ``ablation``: list, figures, check."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import TricksError


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
    from ..plugins import load_plugins
    from ..specs.registry import TRICKS

    if args.what == "datasets":
        from .list_datasets import cmd_list_datasets

        return cmd_list_datasets(args.spec)
    if args.spec and args.what is not None:   # the spec's own tricks or models, with parameters and sizes
        from .list_spec import cmd_list_spec_code

        return cmd_list_spec_code(args.what, args.spec)
    if args.spec:
        from ..plugins import load_spec

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
        if spec.tuning:
            from ..specs.entry import variant_default_lr

            print(f"  tuning: every variant at peak LR {', '.join(f'{x:g}' for x in spec.tuning.lr)} (per optimizer "
                  f"step), chosen on the final {spec.tuning.select_on}: {len(spec.variants) * len(spec.tuning.lr)} "
                  "arms per seed")
        if spec.multi_workload or spec.workloads[0].model != "tf_cnn":
            for w in spec.workloads:
                print(f"  workload {w.name or '(the only one)'}: "
                      + (f"entry {w.entry}, config {w.config}" if w.entry else f"model {w.model}")
                      + (f", {w.epochs} epochs" if w.epochs else "") + (f", subset {w.train_subset}" if w.train_subset else "")
                      + (f", dataset {w.dataset or '(--dataset)'} in {w.data_dir or '--data-dir'}"
                         if w.dataset or w.data_dir else ""))
        for v in spec.variants:
            tricks = ", ".join(_fmt_trick(t) for t in v.tricks) or (f"config {v.config}" if v.config else "(none)")
            peak = f" (peak LR {variant_default_lr(spec, v):g})" if spec.tuning else ""
            print(f"  {v.name:<16} base={v.base or '-':<14} {tricks}{peak}")
        return 0
    load_plugins()
    if args.what == "models":
        from ..specs.models import MODELS
        from ..training.models import describe

        for cls in MODELS:
            d = describe(cls.name)
            print(f"{cls.name}: {cls.description}")
            print(f"    {d['parameters']:,} parameters (10 classes); {d['flops_per_image'] / 1e6:.1f} MFLOP forward per "
                  f"32x32 image" + ("; normalizes already (batch_norm refused)" if cls.normalized else ""))
            for kind, paths in d["sites"].items():
                print(f"    sites {kind}: {', '.join(paths) or '(none)'}")
        return 0
    for cls in TRICKS:
        print(f"{cls.name}: {cls.description}")
        print(f"    hooks: {', '.join(cls.claimed_hooks())}; version {cls.version}"
              + ("; needs a validation split (--validation N)" if cls.needs_validation else ""))
        for p in cls.params:
            print(f"    {p.name} = {p.default!r}  ({p.describe_range()}) {p.help}"
                  + ("; an LR: [tuning] rescales it" if p.is_lr else ""))
    return 0


def _fmt_trick(t: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in t.items() if k != "name")
    return f"{t['name']}({params})"


def _report_corrupted(data) -> None:
    for path, why in data.corrupted.items():
        print(f"tricks: corrupted run file {path}: {why}", file=sys.stderr)
    if data.corrupted:
        print(f"  ({len(data.corrupted)} file(s) left out; delete them and run 'tricks ablation' again to retrain "
              "those runs)", file=sys.stderr)


def cmd_figures(args) -> int:
    """Exit 0, or 1 when run files are corrupted (the report is still written and names them)."""
    from ..analysis.report import build_report
    from ..analysis.studydata import load_study

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

    from ..analysis.regression import compare, describe_update, format_table, make_reference
    from ..running.records import write_json
    from ..analysis.studydata import load_study

    from ..running.schema import REFERENCE, SchemaError, validate

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


