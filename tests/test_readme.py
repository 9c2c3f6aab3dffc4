"""README.md stays true: its tour runs and prints the IR the README shows."""
import contextlib
import io
import os

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def _blocks_after(heading: str) -> list[tuple[str, str]]:
    text = open(README).read()
    section = text[text.index(heading):]
    blocks = []
    for chunk in section.split("```")[1::2]:
        lang, _, body = chunk.partition("\n")
        blocks.append((lang.strip(), body))
    return blocks


def test_tour_runs_and_prints_the_documented_ir():
    blocks = _blocks_after("## A short tour")
    code = next(body for lang, body in blocks if lang == "python")
    shown = next(body for lang, body in blocks if lang == "")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md tour", "exec"), {})
    assert out.getvalue().strip() == shown.strip()


def test_quick_start_commands_are_the_ones_ci_runs():
    text = open(README).read()
    quick = text[text.index("## Quick start"):text.index("## A short tour")]
    commands = [line for line in quick.splitlines() if line.startswith("pip install")]
    assert len(commands) == 2
    assert "examples/mlp_digits.py" in commands[0]
    assert "pytest" in commands[1] and "[test]" in commands[1]
    ci = open(os.path.join(os.path.dirname(README), ".ci", "run")).read()
    assert "README.md" in ci
