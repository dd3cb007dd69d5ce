"""ABC tune headers as text: meters and unit lengths, ABC 2.1's default unit, and a tune cut down to its music.

A header runs from `X:` to the first `K:` line. `clean_tune` keeps what a tune is (`X:1`, one `M:`, an `L:`,
`K:` last, and the field lines a recipe names) and drops the catalogue (titles, notes, sources,
transcribers, lyrics), as folk-rnn trains on meter, key and body only. No torch and no music21 here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from fractions import Fraction

FIELD_LINE = re.compile(r"^([A-Za-z+]):(.*)$")
REQUIRED_FIELDS = ("M", "L", "K")
"""Fields every cleaned tune has, once each in its header: meter, unit note length, key (last)."""


def meter_length(value: str) -> Fraction | None:
    """Bar length in whole notes of an `M:` value: `3/4`, `C` (4/4), `C|` (2/2), `2+3/8`; None for `none`."""
    value = field_value(value)
    if value in ("C", "C|"):
        return Fraction(1)
    match = re.fullmatch(r"\(?([\d+]+)\)?\s*/\s*(\d+)", value)
    if not match or int(match.group(2)) == 0:
        return None
    return Fraction(sum(int(n) for n in match.group(1).split("+") if n), int(match.group(2)))


def unit_length(value: str) -> Fraction | None:
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", field_value(value))
    return Fraction(int(match.group(1)), int(match.group(2))) if match and int(match.group(2)) else None


def default_unit_length(meter: Fraction | None) -> Fraction:
    """ABC 2.1's unit note length where a tune has no `L:`: 1/16 under a meter below 3/4, else 1/8 (and for
    free meter)."""
    return Fraction(1, 16) if meter is not None and meter < Fraction(3, 4) else Fraction(1, 8)


def field_value(value: str) -> str:
    """A field's value without its comment and surrounding spaces (`M: 9/8 % Aird bars it` -> `9/8`)."""
    return value.split("%")[0].strip()


def is_meter(value: str) -> bool:
    """Whether an `M:` value is a meter ABC can read: `none`, `C`, `C|` or a positive fraction."""
    return value == "none" or bool(meter_length(value))


def is_unit(value: str) -> bool:
    """Whether an `L:` value is a unit note length ABC can read: a positive fraction."""
    return bool(unit_length(value))


def meters_in(text: str) -> set[str]:
    """The readable meters of the `M:` field lines of `text` (header and body), as `field_value` writes them."""
    return _values_in(text, "M", is_meter)


def units_in(text: str) -> set[str]:
    """The readable unit note lengths of the `L:` field lines of `text`, as `field_value` writes them."""
    return _values_in(text, "L", is_unit)


KEY = re.compile(r"\s*([A-G][#b]?)\s*([A-Za-z]*)")
MODES = {"": "", "maj": "", "ion": "", "m": "m", "min": "m", "aeo": "m", "mix": "mix", "dor": "dor", "phr": "phr",
         "lyd": "lyd", "loc": "loc"}


def key_name(value: str) -> str | None:
    """A `K:` value as tonic and mode, spelt one way (`G major`, `Gmaj` and `G clef=treble` -> `G`; `Ador`;
    `Em`), so keys can be counted; None for no tonic (`none`, `HP`)."""
    match = KEY.match(field_value(value))
    if not match:
        return None
    mode = match.group(2).lower()
    mode = mode if mode in MODES else mode[:3]
    return match.group(1) + MODES.get(mode, "")


def meter_and_key(text: str) -> tuple[str | None, str | None]:
    """A tune's meter (its header's first readable `M:`) and key (`key_name` of its first `K:`): what a
    collection's histograms count."""
    meter = key = None
    for line in text.splitlines():
        match = FIELD_LINE.match(line)
        if match and match.group(1) == "M" and meter is None and is_meter(field_value(match.group(2))):
            meter = field_value(match.group(2))
        elif match and match.group(1) == "K":
            return meter, key_name(match.group(2))
    return meter, key


def _values_in(text: str, name: str, readable: Callable[[str], bool]) -> set[str]:
    values = (field_value(m.group(1)) for m in re.finditer(rf"^{name}:(.*)$", text, re.MULTILINE))
    return {value for value in values if readable(value)}


class UncleanTune(ValueError):
    """A tune whose header cannot be made valid; the message says why, in a few words."""


def clean_tune(text: str, fields: Collection[str]) -> str:
    """`text` (one tune, from its `X:` line) cut down to its music: `X:1`, then the header's first `M:`, its first
    `L:` (ABC 2.1's default where it has none), the other `fields` in the order written and its first `K:`; then
    the body up to the first blank line (where ABC ends a tune), keeping its lines of music and its field lines of
    `fields` (a change of meter, key or unit; parts), dropping comments and every other field (lyrics, notes).
    Values lose their comments and spaces. UncleanTune where no valid header can be made."""
    lines = text.split("\n")
    key_line = next((i for i, line in enumerate(lines) if line.startswith("K:")), None)
    if key_line is None:
        raise UncleanTune("without K:")
    header = clean_header(lines[:key_line + 1], fields)
    body = []
    for line in lines[key_line + 1:]:
        if not line.strip():
            break
        body.extend(_body_line(line, fields))
    if not body:
        raise UncleanTune("without music")
    return header + "".join(body)


def clean_header(lines: Sequence[str], fields: Collection[str]) -> str:
    """A header's lines up to its `K:` line (its `X:` line or not), cut down as `clean_tune` cuts them, with `X:1`
    first."""
    header: dict[str, list[str]] = {}
    for line in lines[:-1]:
        field = FIELD_LINE.match(line)
        if field:
            header.setdefault(field.group(1), []).append(field_value(field.group(2)))
    if "M" not in header:
        raise UncleanTune("without M:")
    meter = header["M"][0]
    if not is_meter(meter):
        raise UncleanTune("with an unreadable M:")
    unit = header["L"][0] if "L" in header else str(default_unit_length(meter_length(meter)))
    if not is_unit(unit):
        raise UncleanTune("with an unreadable L:")
    others = [f"{name}:{value}\n" for name in header if name in fields and name not in ("X", *REQUIRED_FIELDS)
              for value in header[name]]
    key = field_value(lines[-1][2:])
    return "".join([f"X:1\nM:{meter}\nL:{unit}\n", *others, f"K:{key}\n"])


def _body_line(line: str, fields: Collection[str]) -> list[str]:
    """A line of a tune's body as `clean_tune` keeps it: music as written, a field of `fields` cleaned, nothing
    for a comment or another field."""
    field = FIELD_LINE.match(line)
    if (field and field.group(1) == "V") or "[V:" in line:
        raise UncleanTune("in more than one voice")
    if field and field.group(1) in fields:
        return [f"{field.group(1)}:{field_value(field.group(2))}\n"]
    return [] if field or line.startswith("%") else [line + "\n"]


def around_span_as_learnt(left: str, right: str, fields: Collection[str]) -> tuple[str, str]:
    """What comes before and after a span of a tune's body, cut down as `clean_tune` cuts a tune (the header, whole
    lines of comments and other fields, anything after the tune's end), so that a model trained on tunes cut down so
    reads the piece as it learnt tunes: a catalogue header (titles, sources, transcribers) holds symbols it may
    never have seen. The span's own line, in both parts, stays as written. UncleanTune where `left` has no header
    with a meter."""
    lines = left.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith("X:")), 0)
    key_line = next((i for i, line in enumerate(lines) if line.startswith("K:")), None)
    if key_line is None or key_line == len(lines) - 1:
        raise UncleanTune("without K: before the span")
    before = [kept for line in lines[key_line + 1:-1] for kept in _body_line(line, fields)]
    first, *after = right.split("\n")
    body = []
    for line in after:
        if not line.strip():
            break
        body.extend(_body_line(line, fields))
    return (clean_header(lines[start:key_line + 1], fields) + "".join(before) + lines[-1],
            first + "\n" * bool(after) + "".join(body))


def clean_tunes(tunes: Iterable[str], fields: Collection[str]) -> tuple[list[str], dict[str, int]]:
    """The tunes `clean_tune` can clean, and how many it could not, by reason."""
    kept, skipped = [], {}
    for tune in tunes:
        try:
            kept.append(clean_tune(tune, fields))
        except UncleanTune as reason:
            skipped[str(reason)] = skipped.get(str(reason), 0) + 1
    return kept, skipped


def header_span(text: str) -> tuple[int, int] | None:
    """Where the header opening `text` starts and where its `K:` line starts, or None where `text` opens with no
    header: a run of field lines and comments, from its first `X:` line (or its start), that reaches `K:`."""
    first = re.search(r"^X:", text, re.MULTILINE)
    start = position = first.start() if first else 0
    for line in text[start:].splitlines(keepends=True):
        if line.startswith("K:"):
            return start, position
        if not (FIELD_LINE.match(line.rstrip("\r\n")) or line.startswith("%")):
            return None
        position += len(line)
    return None


def with_unit_length(text: str) -> str:
    """`text` with an `L:` line before its header's `K:` where the header has none: ABC 2.1's default for the
    header's meter, which is what the tune means without one. Text that opens with no header is left alone."""
    span = header_span(text)
    if span is None or re.search(r"^L:", text[span[0]:span[1]], re.MULTILINE):
        return text
    meter = re.search(r"^M:(.*)$", text[span[0]:span[1]], re.MULTILINE)
    unit = default_unit_length(meter_length(meter.group(1)) if meter else None)
    return f"{text[:span[1]]}L:{unit}\n{text[span[1]:]}"
