"""Caption files in the HumanML3D release format.

Each non-empty line of ``texts/<id>.txt`` is one description::

    caption#word/POS word/POS ...#start_sec#end_sec

``start`` and ``end`` are seconds. Both 0.0 (a NaN counts as 0.0) mean the caption describes the whole
clip; otherwise it describes the sub-clip ``motion[int(start*fps):int(end*fps)]``, which the loaders turn
into a separate sample (docs/design.md §2.2). Words are lemmas tagged with universal POS tags (spaCy), as in the
release. The same format is written for remomask's embedded dataset.

Parsing is tolerant: a malformed line is skipped and counted, never raised, so that one bad line in
tens of thousands of files does not stop training. The loader reports the counts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputFileError
from ..files import atomic_write_text

__all__ = [
    "Caption",
    "CaptionFormatError",
    "parse_caption_line",
    "read_captions",
    "format_caption_line",
    "write_captions",
    "evaluator_tokens",
]


class CaptionFormatError(InputFileError):
    """A caption line does not follow ``caption#word/POS ...#start#end``."""


@dataclass(frozen=True)
class Caption:
    """One description of a motion (docs/design.md §2.2).

    Attributes:
        text: the sentence as written, e.g. ``"a man kicks with his left leg."``.
        tokens: ``((word, pos), ...)`` lemma/POS pairs; may be empty when the writer had no tagger.
        start: start of the described span in seconds; 0.0 together with ``end == 0.0`` = whole clip.
        end: end of the described span in seconds.
    """

    text: str
    tokens: tuple[tuple[str, str], ...]
    start: float = 0.0
    end: float = 0.0

    def __post_init__(self) -> None:
        # Accept lists (or "word/POS" strings) from callers and store an immutable tuple of pairs.
        tokens = self.tokens
        if not (type(tokens) is tuple and all(type(t) is tuple and len(t) == 2 for t in tokens)):
            object.__setattr__(self, "tokens", _as_token_pairs(tokens))
        if type(self.start) is not float or type(self.end) is not float or self.start != self.start \
                or self.end != self.end:
            start, end = float(self.start), float(self.end)
            object.__setattr__(self, "start", 0.0 if math.isnan(start) else start)
            object.__setattr__(self, "end", 0.0 if math.isnan(end) else end)

    @property
    def is_whole_clip(self) -> bool:
        """True when the caption describes the whole clip (start == end == 0.0)."""
        return self.start == 0.0 and self.end == 0.0

    def frame_range(self, fps: float) -> tuple[int, int] | None:
        """Frame slice ``(int(start*fps), int(end*fps))`` of a sub-clip caption, None for the whole clip.

        ``fps`` is the feature frame rate (20 for HumanML3D, 12.5 for KIT-ML). The end may lie past the
        clip's last frame; slicing truncates it (docs/design.md §2.2).
        """
        if self.is_whole_clip:
            return None
        return int(self.start * fps), int(self.end * fps)

    @property
    def token_strings(self) -> list[str]:
        """Tokens as ``"word/POS"`` strings, the form the T2M evaluator consumes (docs/design.md §2.4)."""
        return [f"{w}/{p}" for w, p in self.tokens]


def _as_token_pairs(tokens: Iterable) -> tuple[tuple[str, str], ...]:
    pairs = []
    for tok in tokens:
        if isinstance(tok, str):
            word, sep, pos = tok.rpartition("/")
            if not sep:
                raise CaptionFormatError(f"token {tok!r} is not of the form word/POS")
            pairs.append((word, pos))
        else:
            word, pos = tok
            pairs.append((str(word), str(pos)))
    return tuple(pairs)


def parse_caption_line(line: str) -> Caption:
    """Parse one ``caption#word/POS ...#start#end`` line (docs/design.md §2.2).

    The caption text may itself contain ``#``: the last three ``#`` separate the fields. An empty token
    field gives ``tokens == ()``. ``nan`` start/end are read as 0.0.

    Raises:
        CaptionFormatError: fewer than four fields, empty caption, a token without ``/``, a start/end
            that is not a finite non-negative number, or a sub-clip with ``end <= start``.
    """
    body = line.rstrip("\r\n")
    parts = body.rsplit("#", 3)
    if len(parts) != 4:
        raise CaptionFormatError(
            f"expected 'caption#word/POS ...#start#end' (4 fields separated by '#'), "
            f"got {len(parts)} field(s): {body[:80]!r}"
        )
    text, token_field, start_s, end_s = parts
    text = text.strip()
    if not text:
        raise CaptionFormatError(f"empty caption text: {body[:80]!r}")
    tokens = []
    for tok in token_field.split():
        word, sep, pos = tok.rpartition("/")
        if not sep or not word or not pos:
            raise CaptionFormatError(f"token {tok!r} is not of the form word/POS: {body[:80]!r}")
        tokens.append((word, pos))
    try:
        start, end = float(start_s), float(end_s)
    except ValueError:
        raise CaptionFormatError(
            f"start/end seconds {start_s!r}, {end_s!r} are not numbers: {body[:80]!r}"
        ) from None
    start = 0.0 if math.isnan(start) else start
    end = 0.0 if math.isnan(end) else end
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < 0:
        raise CaptionFormatError(f"start/end seconds must be finite and >= 0: {body[:80]!r}")
    if not (start == 0.0 and end == 0.0) and end <= start:
        raise CaptionFormatError(
            f"sub-clip end {end} <= start {start} s describes no frames: {body[:80]!r}"
        )
    return Caption(text, tuple(tokens), start, end)


def read_captions(path: str | os.PathLike) -> tuple[list[Caption], list[str]]:
    """Read a ``texts/<id>.txt`` file.

    Blank lines are ignored. A malformed line is skipped, not raised; the caller reports the count.

    Returns:
        ``(captions, problems)``: the parsed captions in file order, and one message per skipped line
        (``"<path>:<line>: <reason>"``); ``len(problems)`` is the number of malformed lines.

    Raises:
        FileNotFoundError: the file does not exist.
        UnicodeDecodeError: the file is not UTF-8 text.
    """
    path = Path(path)
    captions: list[Caption] = []
    problems: list[str] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                captions.append(parse_caption_line(line))
            except CaptionFormatError as err:
                problems.append(f"{path}:{lineno}: {err}")
    return captions, problems


def format_caption_line(
    text: str,
    tokens: Iterable[tuple[str, str]] | Iterable[str] = (),
    start: float = 0.0,
    end: float = 0.0,
) -> str:
    """Format one caption line (without the newline) in the release format (docs/design.md §2.2).

    Args:
        text: the sentence; must not contain ``#`` or a line break (the release parsers split on ``#``).
        tokens: ``(word, pos)`` pairs or ``"word/POS"`` strings. Words and tags must not contain
            whitespace, ``#`` or ``/``.
        start, end: seconds; leave both 0.0 for a whole-clip caption.

    Raises:
        CaptionFormatError: for any of the forbidden characters, empty text, or a bad start/end.
    """
    if not text.strip():
        raise CaptionFormatError("caption text is empty")
    if "#" in text or "\n" in text or "\r" in text:
        raise CaptionFormatError(
            f"caption text must not contain '#' or a line break (replace them first): {text[:80]!r}"
        )
    out_tokens = []
    for word, pos in _as_token_pairs(tokens):
        for part in (word, pos):
            if not part or any(c in part for c in "#/") or any(c.isspace() for c in part):
                raise CaptionFormatError(
                    f"token {word!r}/{pos!r}: words and tags must be non-empty, without whitespace, "
                    "'#' or '/'"
                )
        out_tokens.append(f"{word}/{pos}")
    start, end = float(start), float(end)
    line = f"{text.strip()}#{' '.join(out_tokens)}#{start}#{end}"
    parse_caption_line(line)  # validates start/end with the reader's rules
    return line


def write_captions(path: str | os.PathLike, captions: Iterable[Caption]) -> None:
    """Write captions to ``path``, one line each, atomically (:func:`remomask.files.atomic_write_text`).

    Raises:
        CaptionFormatError: a caption cannot be written in the release format (see
            :func:`format_caption_line`).
    """
    path = Path(path)
    lines = [format_caption_line(c.text, c.tokens, c.start, c.end) for c in captions]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def evaluator_tokens(tokens: Sequence[str], max_text_len: int = 20) -> tuple[list[str], int]:
    """Word tokens as the T2M evaluator expects them (docs/design.md §2.4).

    ``["sos/OTHER"] + tokens[:max_text_len] + ["eos/OTHER"]``, then padded with ``"unk/OTHER"`` to
    ``max_text_len + 2`` entries.

    Args:
        tokens: ``"word/POS"`` strings (``Caption.token_strings``).
        max_text_len: longest token count kept (20 in the evaluation protocol).

    Returns:
        ``(padded, sent_len)``: ``max_text_len + 2`` strings, and the count before padding
        (between 2 and ``max_text_len + 2``).
    """
    seq = ["sos/OTHER", *list(tokens)[:max_text_len], "eos/OTHER"]
    sent_len = len(seq)
    return seq + ["unk/OTHER"] * (max_text_len + 2 - sent_len), sent_len
