"""photoveil.admin's own behaviour: what it prints of strangers' notes, and when it asks before acting."""

from __future__ import annotations

import io
from typing import Any

import pytest

from photoveil import admin


class Terminal(io.StringIO):
    """Standard input that is (or is not) a terminal, with the operator's answer typed in."""

    def __init__(self, answer: str, *, tty: bool = True) -> None:
        super().__init__(answer)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def photo(notes: list[str]) -> dict[str, Any]:
    """A photo as service.review.reported_photos lists it."""
    return {
        "jobId": "a" * 32,
        "status": "withdrawn",
        "reporters": 4,
        "networks": 3,
        "reasons": {},
        "notes": notes,
    }


def test_a_note_cannot_fake_a_line_of_the_table_nor_drive_the_terminal(capsys) -> None:
    fake = "b" * 32 + "  done       0 new report(s), 0 network(s) counting: -"
    notes = [f"looks fine\n{fake}", "\x1b[2J\x1b[31mred", "abc\u202edef", "photo of my café"]
    admin.print_reports([photo(notes)], as_json=False)

    lines = capsys.readouterr().out.splitlines()

    assert len(lines) == 1 + len(notes)  # the photo's line, then one line per note
    assert all(line.startswith("    ") for line in lines[1:])
    assert lines[1] == f"    looks fine\\n{fake}"
    assert "\x1b" not in "".join(lines) and "\u202e" not in "".join(lines)
    assert lines[4] == "    photo of my café"  # printable text is left as typed


@pytest.mark.parametrize(("typed", "answer"), [("y\n", True), ("YES\n", True), ("n\n", False), ("", False)])
def test_on_a_terminal_it_asks_and_only_yes_goes_ahead(
    monkeypatch: pytest.MonkeyPatch, capsys, typed: str, answer: bool
) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(typed))
    assert admin.confirmed("Take down x?", assume_yes=False) is answer
    assert "Take down x? [y/N]" in capsys.readouterr().err


def test_without_a_terminal_it_cannot_ask_so_only_yes_goes_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", Terminal("y\n", tty=False))  # a pipe saying y is not a person
    assert admin.confirmed("Take down x?", assume_yes=False) is None
    assert admin.confirmed("Take down x?", assume_yes=True) is True


def test_takedown_and_restore_take_yes() -> None:
    parser = admin.build_parser()
    assert parser.parse_args(["takedown", "--yes", "a" * 32]).yes
    assert not parser.parse_args(["restore", "a" * 32]).yes


def test_the_table_says_how_many_reports_were_counted_but_not_kept(capsys) -> None:
    listed = photo(["n1"]) | {"reporters": 104, "stored": 100, "reasons": {"my_face": 1, "other": 103}}
    admin.print_reports([listed], as_json=False)

    first = capsys.readouterr().out.splitlines()[0]

    assert "104 new report(s)" in first and "my_face x1, other x103" in first
    assert "(4 past the first 100: counted, notes not kept)" in first
