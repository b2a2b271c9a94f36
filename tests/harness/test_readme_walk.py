"""The README and docs/ as a newcomer reads them: every documented `stepdpo-bench` command parses against the real
command line (each option exists, each choice is valid, nothing required is missing), and the examples that state
their result (the grading snippet, `stepdpo-bench grade`) give that result.  When the docs and the tool drift
apart this fails, naming the file and the line.  (The commands that need a GPU, the Hub or a server are parsed,
not run; the workflows themselves run in the harness, faults, gate and trainer suites.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stepdpo_bench.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
runner = CliRunner()


def _blocks(path: Path) -> list[tuple[int, str, str]]:
    """(line number, language, text) of each fenced block."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        out.append((text[: m.start()].count("\n") + 2, m.group(1), m.group(2)))
    return out


def _commands() -> list[tuple[str, list[str]]]:
    """Every `stepdpo-bench ...` line of a shell block (continuations joined, comments dropped), as argv."""
    found = []
    for path in DOCS:
        for start, lang, block in _blocks(path):
            if lang not in ("", "bash", "sh", "console"):
                continue
            lines, lineno, here, text = block.split("\n"), start, start, ""
            for line in lines:
                if not text:
                    here = lineno
                lineno += 1
                text += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line
                if line.rstrip().endswith("\\"):
                    continue
                if not re.match(r"\s*(\S+ )*?(&& )?stepdpo-bench ", text) or "$(stepdpo-bench" in text:
                    text = ""  # prose, diagrams, and another tool's line that only calls ours inside $(...)
                    continue
                words, text = shlex.split(text, comments=True), ""
                where = f"{path.relative_to(ROOT)}:{here}"
                while words:  # "pip install ... && stepdpo-bench demo": each command of the line
                    cut = words.index("&&") if "&&" in words else len(words)
                    command, words = words[:cut], words[cut + 1 :]
                    if not command or command[0] != "stepdpo-bench":
                        continue
                    argv = command[1:]
                    if len(argv) > 1 and "|" in argv[1]:  # "pairs collect|locate|rectify|build": each of them
                        found += [(where, [argv[0], alt, *argv[2:]]) for alt in argv[1].split("|")]
                    else:
                        found.append((where, argv))
    return found


COMMANDS = _commands()


def test_the_docs_show_the_commands_a_newcomer_needs():
    names = {argv[0] for _, argv in COMMANDS if argv}
    assert {"demo", "eval", "ingest", "leaderboard", "check", "train", "grade", "pairs"} <= names, names


@pytest.mark.parametrize("where,argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_documented_command_parses(where, argv):
    """Parse as the real CLI does (click's own parser: options, choices, types, required ones), without running."""
    problem = parse_problem(argv)
    if problem:
        pytest.fail(f"{where}: `stepdpo-bench {' '.join(argv)}`: {problem}")


def parse_problem(argv: list[str]) -> str | None:
    """What the real parser says is wrong with ``argv`` (None: it parses).  Typer ships its own copy of click, so
    groups and errors are recognised by shape, not by click's classes."""
    cmd = typer.main.get_command(app)
    args = list(argv)
    while hasattr(cmd, "commands") and args and args[0] in cmd.commands:
        cmd = cmd.commands[args.pop(0)]
    if hasattr(cmd, "commands"):
        return f"{argv[:2]} is not a command"
    elided = "..." in args  # "train ..." in an accelerate line: the rest is elided
    args = [a for a in args if a != "..."]
    try:
        cmd.make_context(cmd.name, args)
    except Exception as exc:
        if type(exc).__name__ == "Exit":
            return None
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if elided and "Missing" in message:
            return None
        return message
    return None


def test_the_parse_check_catches_what_a_doc_can_get_wrong():
    """The check itself, on lines a doc could contain: a misspelt option, a wrong type, an unknown command."""
    assert "No such option" in parse_problem(["eval", "--modle", "x"])
    assert "Invalid value for '--n'" in parse_problem(["eval", "--model", "x", "--n", "abc"])
    assert "is not a command" in parse_problem(["pairs"])
    assert parse_problem(["nosuch", "--x"]) is not None
    assert parse_problem(["eval", "--model", "x", "--tasks", "math"]) is None


def _readme_python() -> str:
    blocks = [b for _, lang, b in _blocks(ROOT / "README.md") if lang == "python" and "is_equivalent(" in b]
    assert blocks, "README has no grading example"
    return blocks[0]


def test_the_readme_grading_example_says_what_it_returns():
    from stepdpo_bench.grading import extract_answer, grade, is_equivalent

    lines = [x for x in _readme_python().splitlines() if "#" in x and not x.startswith("from ")]
    checked = 0
    for line in lines:
        code, said = (s.strip() for s in line.split("  # ", 1))
        call = re.fullmatch(r"(extract_answer|is_equivalent|grade)\((.*)\)", code)
        if not call or "..." in call.group(2).replace('"...', "").replace('r"...', ""):
            continue
        fn = {"extract_answer": extract_answer, "is_equivalent": is_equivalent, "grade": grade}[call.group(1)]
        args = _literal_args(call.group(2))
        got = fn(*args[0], **args[1])
        if call.group(1) == "extract_answer":
            assert repr(got) == said, (line, got)
        elif call.group(1) == "is_equivalent":
            equal = got.equal
            assert equal == (said.startswith("Verdict(equal=True") or said.startswith("equal")), (line, got)
            if said.startswith("Verdict("):
                assert repr(got) == said, (line, got)
        else:
            assert got.correct, (line, got)
        checked += 1
    assert checked >= 5, checked


def _literal_args(text: str) -> tuple[list, dict]:
    """The README's literal arguments (strings, raw strings, keywords), read with ast: nothing is executed."""
    import ast

    call = ast.parse(f"f({text})", mode="eval").body
    return [ast.literal_eval(a) for a in call.args], {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def _grade_lines() -> list[tuple[list[str], str]]:
    return [(argv, where) for where, argv in COMMANDS if argv and argv[0] == "grade" and where.startswith("README")]


def test_the_readme_grade_commands_do_what_they_say():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = _grade_lines()
    assert len(lines) >= 3
    for argv, where in lines:
        res = runner.invoke(app, argv)
        source = text.splitlines()[int(where.rsplit(":", 1)[1]) - 1]
        said = re.fullmatch(r".*#\s*(.*?)\s*\(exit (\d)\)\s*", source)
        assert said, f"{where}: a grade example must say what it prints and its exit code"
        shown, code = said.group(1), int(said.group(2))
        assert res.exit_code == code, (where, res.output)
        if "--json" in argv:
            import json

            got = json.loads(res.stdout)
            for key, value in re.findall(r'"(\w+)": ("[^"]*"|true|false)', shown):
                assert got[key] == json.loads(value), (where, key, got)
        else:
            head = shown.split("...")[0].strip()
            assert res.output.startswith(head.split("  ")[0]) and " ".join(head.split()) in " ".join(res.output.split())


def test_the_readme_test_command_installs_what_ci_installs():
    """A newcomer runs the README's test command right after its setup command: it must install the extras the
    tests import (it once ran pytest with none of them: "No module named pytest"), the same ones CI installs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    extras = re.compile(r"pip install (?:-q )?-e ['\"]?\.\[([\w,]+)\]")
    test_line = next(line for line in readme.splitlines() if "python -m pytest -q" in line and "pip install" in line)
    (ours,) = extras.findall(test_line)
    (theirs,) = extras.findall(ci)
    assert set(ours.split(",")) == set(theirs.split(",")) and "dev" in ours.split(",")
