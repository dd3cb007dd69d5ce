"""genseq: learn to write music and text one symbol at a time.

    import genseq
    run = genseq.train("input.txt", minutes=10)
    print(genseq.load(run.run_dir).sample("ROMEO:", length=300, seed=1)[0])
"""

__version__ = "0.1.0"

from genseq.api import TrainedModel, load, prepare_data, train  # noqa: E402  (after __version__, which they read)
from genseq.judge import judge  # noqa: E402  (the function: genseq.judge(samples, reference); the package stays importable)

__all__ = ["TrainedModel", "__version__", "judge", "load", "prepare_data", "train"]
