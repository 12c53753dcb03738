"""The run bars print a fractional epoch with one decimal."""

import io

from tricks.running.progress import EPOCH_BAR


def test_epoch_bar_prints_the_fractional_epoch_with_one_decimal():
    from tqdm import tqdm

    out = io.StringIO()
    bar = tqdm(total=10, desc="baseline__seed0", file=out, bar_format=EPOCH_BAR, mininterval=0)
    bar.n = 1 + 245 / 782
    bar.set_description("baseline__seed0 (resumed)")    # as Progress does for a resumed run
    text = out.getvalue()
    bar.close()
    assert "baseline__seed0 (resumed):  13%|" in text and "1.3/10 epochs" in text
    assert "1.3132" not in text and "(resumed): :" not in text
