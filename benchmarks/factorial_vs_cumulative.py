"""The factorial study's main effects next to the cumulative study's step deltas of the same tricks.

    python benchmarks/factorial_vs_cumulative.py [--factorial results/factorial]
                                                 [--cumulative results/backprop_tricks]

Reads only stored tables (``effects.csv`` of the factorial study, ``deltas.csv`` of the cumulative
one; ``make figures`` writes both) and writes ``vs_cumulative.csv`` and ``vs_cumulative.png`` into
the factorial study's directory, and prints the table. No training, no torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# factor of benchmarks/factorial.toml -> (variant of benchmarks/backprop_tricks.toml, its base there):
# the step at which the cumulative study adds the same trick with the same parameters.
STEPS = {
    "norm": ("norm_inputs", "baseline"),
    "exp_lr": ("lr_schedule", "norm_inputs"),
    "weight_decay": ("weight_decay", "lr_schedule"),
    "kaiming": ("init_weights", "weight_decay"),
    "dense_dropout": ("dropout_dense", "init_weights"),
    "conv_dropout": ("dropout_conv", "init_weights"),
}


def main(argv=None) -> int:
    import pandas as pd

    from tricks.analysis.crossdesign import effects_vs_steps
    from tricks.analysis.figures import effects_vs_steps_plot

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factorial", type=Path, default=REPO / "results" / "factorial")
    ap.add_argument("--cumulative", type=Path, default=REPO / "results" / "backprop_tricks")
    args = ap.parse_args(argv)
    tables = [args.factorial / "effects.csv", args.cumulative / "deltas.csv"]
    for t in tables:
        if not t.is_file():
            print(f"error: {t} not found (run `tricks figures --results {t.parent}` first)", file=sys.stderr)
            return 2
    try:
        table = effects_vs_steps(pd.read_csv(tables[0]), pd.read_csv(tables[1]), STEPS)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    table.to_csv(args.factorial / "vs_cumulative.csv", index=False, float_format="%.6g")
    effects_vs_steps_plot(table, args.factorial / "vs_cumulative.png")
    show = table.assign(**{c: (100 * table[c]).round(2) for c in table.columns
                           if c.startswith(("factorial_e", "factorial_ci", "step_d", "step_ci", "difference"))})
    print(show.to_string(index=False))
    print(f"wrote {args.factorial / 'vs_cumulative.csv'} and vs_cumulative.png (points = percent of micro-F1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
