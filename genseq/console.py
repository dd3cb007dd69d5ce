"""Progress bars and messages on stderr (rich), shared by the Python API and the CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


@contextlib.contextmanager
def counting_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A bar over `total` items (None: a count not known in advance); yields the function that advances it."""
    if not enabled:
        yield lambda n: None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextlib.contextmanager
def training_bar(enabled: bool = True) -> Iterator[Callable[[float, dict], None]]:
    """A bar over the training budget (0..1) showing loss, tokens/s and time left.

    Yields `update(fraction_done, fields)` where fields holds step, loss, val and tok_s.
    """
    if not enabled:
        yield lambda fraction, fields: None
        return
    with Progress(
        TextColumn("train"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("step {task.fields[step]}  loss {task.fields[loss]}  val {task.fields[val]}  "
                   "{task.fields[tok_s]} tok/s"),
        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=console,
    ) as bar:
        task = bar.add_task("train", total=1.0, step=0, loss="-", val="-", tok_s="-")
        yield lambda fraction, fields: bar.update(task, completed=min(fraction, 1.0), **fields)


def say(message: str, quiet: bool = False) -> None:
    if not quiet:
        console.print(message, highlight=False)
