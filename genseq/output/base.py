"""What every output shares: the sources it takes (a PrettyMIDI or a .mid path) and the error for a missing library.

Libraries are imported inside the function that needs them, so the core runs without the optional ones; a
missing one raises MissingPackage naming what to install.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TypeAlias

from genseq.errors import GenseqError, InputError

if TYPE_CHECKING:
    import pretty_midi

PathLike: TypeAlias = "str | os.PathLike[str]"
MidiSource: TypeAlias = "pretty_midi.PrettyMIDI | str | os.PathLike[str]"


class MissingPackage(GenseqError):
    """A library an output needs is not installed (the message names what to install)."""


def missing_package(package: str, extra: str | None = None) -> MissingPackage:
    fix = f"pip install 'genseq[{extra}]'" if extra else f"pip install {package} (a genseq dependency)"
    return MissingPackage(f"{package} is not installed; install it with: {fix}")


def load_midi(midi: MidiSource) -> pretty_midi.PrettyMIDI:
    import pretty_midi

    if isinstance(midi, pretty_midi.PrettyMIDI):
        return midi
    try:
        return pretty_midi.PrettyMIDI(str(midi))
    except Exception as err:  # mido and pretty_midi raise many types on broken files
        raise InputError(f"{midi} is not a readable MIDI file ({type(err).__name__}); give a .mid file") from None
