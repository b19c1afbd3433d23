"""What the command line prints from a file, made safe to print: every control character escaped.

An id, a criterion or method name, a path or a model spec read from an evidence file, a manifest or a folder
is the file's author's text.  Printed raw, a line break starts a forged line ("0 worse ..."), an ESC starts a
terminal escape sequence (colours, cursor moves that overwrite the real summary line), a carriage return or
a bidirectional override hides what precedes it.  :func:`printable` writes each such character as its
Python escape (``\\n``, ``\\x1b``, ``\\u202e``), so everything the CLI prints stays the lines it means to
print.  :data:`saliency_audit.common.errors._ESCAPE_BREAKS` does the same for line breaks only, in error messages.
"""
from __future__ import annotations

import sys

#: C0 controls (tab included), DEL, C1 controls, the Unicode line / paragraph separators and the
#: bidirectional embeddings, overrides and isolates: each written as its escape.
_UNSAFE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F),
           *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C, 0xFEFF]
_ESCAPES = {c: repr(chr(c))[1:-1] if repr(chr(c))[1:-1] != chr(c) else f"\\u{c:04x}" for c in _UNSAFE}


def printable(text) -> str:
    """``text`` (``str()`` of anything) with every control character escaped: one line, no terminal codes.
    No character of Unicode category Cc, Zl or Zp is left (checked in the tests)."""
    return str(text).translate(_ESCAPES)


def say(*parts, file=None) -> None:
    """``print`` through :func:`printable`: the one way the CLI prints."""
    print(printable(" ".join(str(p) for p in parts)), file=file if file is not None else sys.stdout)

