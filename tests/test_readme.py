"""The README says what the code does: its config reference lists every key of the build and the
training configs with the code's own defaults, and its command-line section every subcommand and
option the parser takes. (How the README is checked line by line against the code, in part.)"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from codecorpus.interface.cli import make_parser
from codecorpus.pipeline.config import BuildConfig, SourceConfig
from codecorpus.trainer.config import TrainConfig

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    return README[start: README.index("\n## ", start + 1)]


def readme_keys() -> dict[str, str]:
    """`dotted.key` → the default column's text, from the reference tables."""
    keys = {}
    for line in (section("Config reference (build)") + section("Training")).splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = [n.strip().strip("`") for n in cells[0].split(",")]
        defaults = [d.strip() for d in cells[1].split(",")] if len(names) > 1 else [cells[1]]
        prefix = names[0].rsplit(".", 1)[0]
        for i, name in enumerate(names):
            keys[name if i == 0 else f"{prefix}.{name}"] = defaults[i] if len(defaults) == len(names) else cells[1]
    return keys


def code_keys(model: type[BaseModel], prefix: str = "") -> dict[str, object]:
    out = {}
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out.update(code_keys(kind, f"{prefix}{name}."))
        elif name != "sources":
            out[f"{prefix}{name}"] = field.get_default(call_default_factory=True)
    return out


def literal(text: str):
    """The value a README default cell states, or None when it states it in words."""
    text = text.strip("`").strip()
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r'"[^"]*"', text):
        return text.strip('"')
    if text == "2^32":
        return 2.0**32
    number = re.match(r"-?\d[\d_]*(\.\d+)?(e-?\d+)?$", text.split(" ")[0])
    return float(number.group(0).replace("_", "")) if number else None


@pytest.mark.parametrize("model, prefix", [(BuildConfig, ""), (SourceConfig, "sources."), (TrainConfig, "")])
def test_every_config_key_is_in_the_readme_with_its_default(model, prefix):
    documented = readme_keys()
    code = code_keys(model, prefix)
    assert sorted(set(code) - set(documented)) == []
    for key, default in code.items():
        stated = literal(documented[key])
        if stated is None or default is None or isinstance(default, list):
            continue
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            assert float(default) == stated, (key, default, documented[key])
        else:
            assert default == stated, (key, default, documented[key])


def test_the_readme_has_no_key_the_code_lacks():
    code = {**code_keys(BuildConfig), **code_keys(SourceConfig, "sources."), **code_keys(TrainConfig)}
    assert sorted(k for k in readme_keys() if k not in code and k != "[[sources]]") == []


def test_every_subcommand_and_option_is_in_the_command_line_section():
    text = section("The command line") + section("Looking inside a run")
    parser = make_parser()
    missing = []

    def walk(p, words: list[str]) -> None:
        for action in p._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):   # subcommands
                for name, sub in action.choices.items():
                    if f"{' '.join(words + [name])}" not in text:
                        missing.append(" ".join(words + [name]))
                    walk(sub, words + [name])
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help" and flag not in text:
                    missing.append(f"{' '.join(words)} {flag}")

    walk(parser, ["codecorpus"])
    assert missing == []
