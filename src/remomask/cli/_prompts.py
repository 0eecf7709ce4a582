"""Prompts as users type them: ``text`` or ``text#seconds``, on the command line or one per line of a file
(docs/design.md §11). One parser serves both, so ``#`` means the same everywhere."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputFileError, MissingFileError, UsageError

__all__ = ["parse_prompt", "parse_prompts", "read_prompts_file"]

_EXAMPLE = "write 'text#seconds', e.g. 'a person waves#3.5'"


def parse_prompt(line: str, where: str = "the prompt") -> tuple[str, float | None]:
    """Split ``"a person waves#3.5"`` into ``("a person waves", 3.5)``; a line without ``#`` has no duration.

    Args:
        line: one prompt; surrounding white space and a UTF-8 byte-order mark are removed.
        where: how to name the prompt in errors (e.g. ``"prompts.txt line 3"``).

    Returns:
        ``(text, seconds or None)``; the duration's range (2-9.8 s) is checked by the pipeline.

    Raises:
        UsageError: an empty text, or a part after the last ``#`` that is not a number of seconds.
    """
    text = line.replace("\ufeff", "").strip()
    seconds = None
    if "#" in text:
        text, _, tail = text.rpartition("#")
        try:
            seconds = float(tail)
        except ValueError:
            raise UsageError(f"{where}: {tail.strip()!r} after '#' is not a number of seconds ({_EXAMPLE})") from None
        text = text.strip()
    if not text:
        raise UsageError(f"{where}: the prompt text is empty; give a sentence, e.g. \"a person waves\"")
    return text, seconds


def parse_prompts(text: str, source: str = "prompts file") -> list[tuple[str, float | None]]:
    """Parse a prompts file's text: one ``text[#seconds]`` per line; blank lines and lines starting with
    ``#`` are skipped.

    Returns:
        ``[(text, seconds or None), ...]``.

    Raises:
        UsageError: a bad line (see :func:`parse_prompt`; the message names the line), or no prompt at all.
    """
    out: list[tuple[str, float | None]] = []
    for number, raw in enumerate(text.replace("\ufeff", "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.append(parse_prompt(line, f"{source} line {number}"))
    if not out:
        raise UsageError(f"{source} holds no prompt (one 'text[#seconds]' per line)")
    return out


def read_prompts_file(path: Path) -> list[tuple[str, float | None]]:
    """Read and parse a UTF-8 prompts file (a byte-order mark is allowed).

    Raises:
        MissingFileError: no such file. InputFileError: a folder, or not UTF-8 text. UsageError: a bad line.
    """
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"prompts file {path} is a directory; give a text file with one prompt per line")
    if not path.is_file():
        raise MissingFileError(f"prompts file {path} does not exist")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"prompts file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                             f"{exc.start}); save it as UTF-8") from None
    return parse_prompts(text, str(path))
