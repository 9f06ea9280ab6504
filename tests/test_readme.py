"""The README's names and commands exist: what a new user copies from it runs as written.

* Every ``analysis.``/``matching.``/``composer.`` name in its Python blocks resolves from the
  packages alone, as the block's ``import analysis, matching, composer`` gives them.
* Every ``soundtrack ...`` line in its command blocks names a subcommand (and action) that exists,
  with options that subcommand takes; every subcommand is shown.
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from soundtrack.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"
PACKAGES = ("analysis", "matching", "composer")


def _blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block."""
    out, lang, body = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                out.append((lang, "\n".join(body)))
                lang = None
        elif lang is not None:
            body.append(line)
    return out


BLOCKS = _blocks(README.read_text(encoding="utf-8"))
PYTHON_BLOCKS = [body for lang, body in BLOCKS if lang == "python"]
COMMAND_LINES = [line.strip() for lang, body in BLOCKS if lang in ("", "bash", "sh")
                 for line in body.splitlines() if line.strip().startswith("soundtrack ")]


def _dotted_names() -> list[str]:
    """Names used as ``package.attr...`` in the Python blocks (imports aside: they import what they name)."""
    code = "\n".join(line.split("#")[0] for block in PYTHON_BLOCKS for line in block.splitlines()
                     if not re.match(r"\s*(from|import)\s", line))
    found = re.findall(rf"(?<![\w.])((?:{'|'.join(PACKAGES)})(?:\.\w+)+)", code)
    return sorted(set(found))


def test_the_imports_in_the_python_blocks_work() -> None:
    for block in PYTHON_BLOCKS:
        for line in block.splitlines():
            if re.match(r"\s*(from|import)\s", line):
                exec(line.split("#")[0].strip(), {})


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_the_readme_has_python_and_command_examples() -> None:
    assert len(PYTHON_BLOCKS) >= 3 and len(COMMAND_LINES) >= 15
    assert {"composer.compose", "composer.generate"} <= set(_dotted_names())


@pytest.mark.parametrize("name", _dotted_names())
def test_python_names_resolve_from_the_packages(name: str) -> None:
    head, *rest = name.split(".")
    value = importlib.import_module(head)
    for i, attr in enumerate(rest):
        assert hasattr(value, attr), f"README uses {name}, but {'.'.join([head, *rest[:i]])} has no {attr!r}"
        value = getattr(value, attr)


def test_every_subcommand_is_shown() -> None:
    shown = {line.split()[1] for line in COMMAND_LINES}
    assert set(_subparsers(build_parser())) <= shown


@pytest.mark.parametrize("line", COMMAND_LINES)
def test_command_lines_use_options_that_exist(line: str) -> None:
    words = re.sub(r"[\[\]()|]", " ", line.split("#")[0]).split()
    commands = _subparsers(build_parser())
    assert words[1] in commands, f"no subcommand {words[1]!r}"
    parser = commands[words[1]]
    actions = _subparsers(parser)
    if actions:  # `feedback stats|export|delete`: options of any action named on the line
        named = [w for w in words[2:] if w in actions]
        assert named, f"{line!r} names none of {sorted(actions)}"
        options = {o for a in named for act in actions[a]._actions for o in act.option_strings}
    else:
        options = {o for act in parser._actions for o in act.option_strings}
    used = {w for w in words[2:] if re.fullmatch(r"--?[a-z][\w-]*", w)}
    assert used <= options, f"{line!r}: {sorted(used - options)} not among {sorted(options)}"
