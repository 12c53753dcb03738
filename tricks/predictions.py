"""Per-image class labels as compact text: a run record's test predictions, a study's test labels.

One byte per image (class indices 0-255), base64: 13,336 characters for CIFAR-10's 10,000 test
images. The lowest layer (no torch, no numpy): the engine's driver encodes, the analysis decodes.
"""

from __future__ import annotations

import base64
from typing import Sequence

ENCODING = "uint8-base64"   # the one encoding written; a reader refuses any other
MAX_CLASSES = 256


def encode_labels(labels: Sequence[int]) -> dict:
    """``{"encoding": "uint8-base64", "n": len, "data": ...}`` for class indices in [0, 255]."""
    values = [int(x) for x in labels]
    if values and not 0 <= min(values) <= max(values) < MAX_CLASSES:
        raise ValueError(f"class indices must lie in [0, {MAX_CLASSES - 1}], got {min(values)}..{max(values)}")
    return {"encoding": ENCODING, "n": len(values), "data": base64.b64encode(bytes(values)).decode("ascii")}


def decode_labels(blob: dict) -> list[int]:
    """The class indices ``encode_labels`` wrote; ValueError (one line) if the blob is not one."""
    if not isinstance(blob, dict) or blob.get("encoding") != ENCODING:
        raise ValueError(f"labels must be an object with encoding {ENCODING!r}")
    try:
        raw = base64.b64decode(blob["data"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"labels' data is not base64 ({exc})") from None
    if len(raw) != blob.get("n"):
        raise ValueError(f"labels hold {len(raw)} values, their n says {blob.get('n')}")
    return list(raw)
