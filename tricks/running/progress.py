"""A study's progress: bars on a terminal, one line per finished run in a log.

With bars (``enabled``: stderr is a terminal, or ``--progress`` forces them): one bar counting finished
runs, one per worker (epoch, loss, accuracy). Without (stderr is a file or a pipe, or ``--no-progress``):
no cursor codes at all, one line per finished run on stderr, ``tricks: run 3/40 baseline__seed2: ok``."""

from __future__ import annotations

import sys


# A run's bar: "{n}" is a fractional epoch count, printed with one decimal (not 1.3836317135549872/10).
EPOCH_BAR = "{l_bar}{bar}| {n:.1f}/{total_fmt} epochs [{elapsed}<{remaining}{postfix}]"


class Progress:
    """Fed with ``event(worker, stem, kind, payload)`` from the runs and ``finished(stem, status)``."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.tqdm, self.enabled, self.total, self.done = tqdm, enabled, total, 0
        self.study = tqdm(total=total, desc="study", unit="run", disable=not enabled, position=0)
        self.bars: dict = {}
        self.started: set[str] = set()

    def event(self, worker, stem: str, kind: str, p: dict) -> None:
        if kind == "start":
            self.started.add(stem)
        if kind == "notice":     # a one-line message for the user: shown with or without bars
            line = f"tricks: {stem}: {p['message']}"
            if self.enabled:
                self.tqdm.write(line, file=sys.stderr)   # above the bars
            else:
                print(line, file=sys.stderr, flush=True)
            return
        if not self.enabled:
            return
        if kind == "start":
            bar = self.bars.get(worker)
            if bar is None:
                # Within an epoch the count is fractional (steps / steps per epoch): one decimal.
                bar = self.tqdm(desc=stem, total=p["epochs"], unit="epoch", position=len(self.bars) + 1,
                                leave=False, bar_format=EPOCH_BAR)
                self.bars[worker] = bar
            bar.reset(total=p["epochs"])
            bar.set_description(stem)
            bar.set_postfix_str("", refresh=False)   # not the previous run's loss and accuracy
        bar = self.bars.get(worker)
        if bar is None:
            return
        if kind == "step":
            bar.n = p["epoch"] - 1 + p["step"] / p["steps"]
            bar.refresh()
        elif kind == "resume":
            bar.n = p["epoch"]
            bar.set_description(f"{stem} (resumed)")
            bar.refresh()
        elif kind == "epoch":
            bar.n = p["epoch"]
            bar.set_postfix(loss=f"{p['loss']:.3f}", acc=f"{p['acc']:.3f}")

    def finished(self, stem: str, status: str) -> None:
        self.done += 1
        if not self.enabled:
            print(f"tricks: run {self.done}/{self.total} {stem}: {status}", file=sys.stderr, flush=True)
            return
        self.study.update(1)
        self.study.set_postfix_str(f"last: {stem} {status}")

    def close(self) -> None:
        for b in self.bars.values():
            b.close()
        self.study.close()
