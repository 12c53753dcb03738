"""Do two stored studies of the same spec give the same accuracies? (e.g. fp32 vs bf16, old vs new engine)

    python benchmarks/compare_studies.py A_DIR B_DIR [--out results/bench/precision]

Reads only stored runs (``runs/*.json`` + ``study.json``) of both directories. Per variant it
pairs the two studies by seed (the same seed gives the same init and data order in both), and
reports B - A with a 95% t-interval and an exact sign-flip p; then the same over every
(variant, seed) pair. A speed lever passes when no variant moves beyond seed noise. Writes
``comparison.csv`` and ``comparison.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tricks.errors import TricksError  # noqa: E402
from tricks.analysis.stats import between_studies  # noqa: E402
from tricks.analysis.studydata import load_study  # noqa: E402


def describe(data) -> str:
    m = data.manifest
    engines = sorted({str(r["settings"].get("engine")) for r in data.records})
    return (f"{m['spec']['name']}, precision {m.get('precision', 'fp32')}, engine {'/'.join(engines)}, "
            f"seeds {','.join(map(str, m['seeds']))}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="results directory of study A (the reference)")
    ap.add_argument("b", type=Path, help="results directory of study B (the one being checked)")
    ap.add_argument("--metric", default="micro_f1", help="a runs.csv column (default micro_f1, i.e. accuracy)")
    ap.add_argument("--out", type=Path, default=None, help="write comparison.csv/.json/.png here")
    args = ap.parse_args()
    try:
        a, b = load_study(args.a), load_study(args.b)
    except TricksError as exc:
        print(f"compare_studies: {exc}", file=sys.stderr)
        return 2
    if a.manifest["dataset"].get("sha256") != b.manifest["dataset"].get("sha256"):
        print("compare_studies: the two studies used different datasets; their accuracies are not comparable",
              file=sys.stderr)
        return 2
    order = [v for v in a.order if v in set(b.order)]
    table, overall = between_studies(a.runs(), b.runs(), order, args.metric)
    print(f"A: {args.a} ({describe(a)})\nB: {args.b} ({describe(b)})\n")
    print(f"{'variant':<15} {'A mean':>7} {'B mean':>7} {'n':>3} {'B-A pts':>8} {'95% CI':>17} {'p':>6}  verdict")
    for r in table.to_dict("records"):
        print(f"{r['variant']:<15} {100 * r['mean_a']:7.2f} {100 * r['mean_b']:7.2f} {r['n']:3d} "
              f"{100 * r['delta']:+8.2f} [{100 * r['ci_low']:+6.2f}, {100 * r['ci_high']:+6.2f}] "
              f"{r['sign_flip_p']:6.3f}  {r['verdict']}")
    print(f"{'all pairs':<15} {'':>7} {'':>7} {overall['n']:3d} {100 * overall['delta']:+8.2f} "
          f"[{100 * overall['ci_low']:+6.2f}, {100 * overall['ci_high']:+6.2f}] {overall['sign_flip_p']:6.3f}  "
          f"{overall['verdict']}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "comparison.csv", index=False, float_format="%.6g")
        (args.out / "comparison.json").write_text(json.dumps(
            {"a": {"dir": str(args.a), "what": describe(a)}, "b": {"dir": str(args.b), "what": describe(b)},
             "metric": args.metric, "all_pairs": overall}, indent=1) + "\n")
        plot(table, describe(a), describe(b), args.out / "comparison.png")
        print(f"wrote {args.out / 'comparison.csv'}, comparison.json, comparison.png")
    return 0


def plot(table, label_a: str, label_b: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * len(table) + 2), sharey=True)
    y = range(len(table))
    for col, off, color, label in (("a", -0.15, "#1f77b4", "A: " + label_a), ("b", 0.15, "#ff7f0e", "B: " + label_b)):
        mean = 100 * table[f"mean_{col}"]
        err = [mean - 100 * table[f"ci_low_{col}"], 100 * table[f"ci_high_{col}"] - mean]
        axes[0].errorbar(mean, [i + off for i in y], xerr=err, fmt="o", color=color, capsize=3, label=label)
    axes[0].set_yticks(list(y), table["variant"])
    axes[0].invert_yaxis()
    axes[0].set_xlabel("accuracy % (mean and 95% CI over seeds)")
    axes[0].legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    d = 100 * table["delta"]
    axes[1].errorbar(d, list(y), xerr=[d - 100 * table["ci_low"], 100 * table["ci_high"] - d], fmt="o",
                     color="#444444", capsize=3)
    axes[1].axvline(0, color="#999999", lw=1)
    axes[1].set_xlabel("B - A, points, paired by seed (95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
