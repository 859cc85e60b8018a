"""Make a message one line whatever text a user or a target put into it."""

from __future__ import annotations


def one_line(text: str) -> str:
    """Escape every character that could break or hide a line, leave the rest as typed.

    str.splitlines (and terminals) break on more than "\\n": "\\r", "\\v", "\\f",
    "\\x1c"-"\\x1e", "\\x85", "\\u2028", "\\u2029". Every non-printable character is
    shown as its Python escape instead, so the message stays one visible line.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
