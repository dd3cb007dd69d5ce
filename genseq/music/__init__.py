"""Music as data, without torch: scores of notes (MIDI), ABC headers and bars read from the text, music21's
ABC reading, theory shared by the rules and the judge (voice ranges, intervals), and folk-tune controls."""
