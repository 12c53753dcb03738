"""``tricks list datasets``: every registered dataset with its classes, sizes and checksum source."""

from __future__ import annotations


def cmd_list_datasets(spec: str | None = None) -> int:
    """Print the registered datasets; with ``spec``, after its ``imports`` registered theirs."""
    from ..plugins import load_plugins, load_spec
    from ..specs.datasets import DATASETS

    if spec:
        load_spec(spec)
    else:
        load_plugins()
    for cls in DATASETS:
        own = "" if cls.__module__.startswith("tricks.") else f" (from {cls.__module__})"
        print(f"{cls.name}{own}: {cls.description}")
        print(f"    classes: {cls.classes}")
        print(f"    sizes: {cls.sizes}")
        print(f"    checksum source: {cls.checksum_source}")
    print("Every run's settings hold the sha256 of its dataset's decoded images, labels and class names "
          "(data_sha256); a spec's imports can register more datasets (tricks list datasets --spec FILE).")
    return 0
