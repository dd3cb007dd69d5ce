"""Part-writing facts shared by the voice-leading rule (which keeps them while sampling) and the chorale judge
(which counts where they are broken), so both read the same numbers."""

VOICE_RANGES = ((60, 81), (55, 76), (48, 69), (38, 62))
"""Usual MIDI ranges of soprano (C4-A5), alto (G3-E5), tenor (C3-A4) and bass (D2-D4), at the generous end of
the harmony textbooks' (Bach's held-out chorales leave them for 1.6% of their notes)."""
PARALLEL_INTERVALS = (0, 7)
"""Interval classes whose repetition between two moving voices is a fault: octaves (and unisons), fifths."""
