"""Judge music against real pieces: validity, bar structure, MGEval-style statistics as overlapping areas,
chorale part-writing, copying, and the reference's own ceiling (two random halves of it).

    import genseq
    print(genseq.judge.table(genseq.judge("out/", "folk-abc")))

The package itself is callable (`genseq.judge(...)` is `genseq.judge.judge(...)`), so the short public name and
the subpackage are one object whichever is imported first.

Reads files through `genseq.music.score` and music21 (ABC); knows nothing of models.
"""

import sys
import types

from genseq.judge.core import Figure, Judgement, judge
from genseq.judge.report import histogram_pngs, html_section, table


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs) -> Judgement:
        return judge(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage

__all__ = ["Figure", "Judgement", "histogram_pngs", "html_section", "judge", "table"]
