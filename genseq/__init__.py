"""genseq: learn to write music and text one symbol at a time.

    import genseq
    run = genseq.train("input.txt", minutes=10)
    print(genseq.load(run.run_dir).sample("ROMEO:", length=300, seed=1)[0])

The public names load on first use, so `genseq --help` does not wait for torch.
"""

from importlib import import_module
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

__version__ = version("genseq")

_PUBLIC = {"TrainedModel": "genseq.api", "load": "genseq.api", "prepare_data": "genseq.api", "train": "genseq.api"}

if TYPE_CHECKING:
    from genseq import judge
    from genseq.api import TrainedModel, load, prepare_data, train


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    if name == "judge":  # the subpackage, callable as genseq.judge(samples, reference)
        return import_module("genseq.judge")
    raise AttributeError(f"module 'genseq' has no attribute {name!r}")


__all__ = ["TrainedModel", "__version__", "judge", "load", "prepare_data", "train"]
