"""Judge music against real pieces: validity, bar structure, MGEval-style statistics as overlapping areas,
chorale part-writing, copying, and the reference's own ceiling (two random halves of it).

    from genseq.judge import judge, table
    print(table(judge("out/", "folk-abc")))

Reads files through `genseq.music` and music21 (ABC); knows nothing of models.
"""

from genseq.judge.core import Figure, Judgement, judge
from genseq.judge.report import histogram_pngs, html_section, table

__all__ = ["Figure", "Judgement", "histogram_pngs", "html_section", "judge", "table"]
