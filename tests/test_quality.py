"""The quality rules (`filters.rules = "quality"`): each rule drops a file it must drop and keeps one
it must keep (alone, the others switched off), thresholds come from the TOML, and the CodeGeeX rule
set is what it was. Fixtures are real standard-library code, altered where a rule needs junk."""
from __future__ import annotations

import base64

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from conftest import STDLIB
from codecorpus.stages.filters import build_filters
from codecorpus.pipeline.config import BuildConfig, ConfigError, load_config
from codecorpus.stages import near_dedup, per_file
from codecorpus.stages.filters import apply_filters
from codecorpus.stages.license import LicensePolicy
from codecorpus.stages.quality_rules import DEFAULTS, RULE_NAMES, QualitySettings
from codecorpus.stages.records import new_record, records_table

PY = (STDLIB / "textwrap.py").read_text()           # hand-written library code that every rule keeps
C_INCLUDE = sorted(p for p in (STDLIB.parent.parent / "include").rglob("*.h") if p.stat().st_size > 4000)


def judge(files: list[tuple[str, str, str]], settings: QualitySettings) -> list[str | None]:
    """The reason of each (path, language, text) under the quality rules alone."""
    table = records_table([new_record("s", "r", path, 0, text=text, size=len(text), language=lang) for path, lang, text in files])
    out = apply_filters(table, [], None, settings)
    return out.column("reason").to_pylist()


def only(rule: str, **thresholds) -> QualitySettings:
    return QualitySettings(thresholds={**DEFAULTS, **thresholds}, off=frozenset(RULE_NAMES) - {rule})


def lines(line: str, n: int) -> str:
    return "".join(line.format(i=i) for i in range(n))


C_TEXT = "#include <stdio.h>\n\nstatic int add(int a, int b)\n{\n    return a + b;\n}\n\n" + PY.replace("\n", "\n// ")[:3000] + "\n"
HTML_PROSE = "<html><head><title>textwrap</title></head><body>\n" + "".join(
    f"<p>{p.strip()}</p>\n" for p in PY.split('"""')[1::2][:12]) + "</body></html>\n"
HTML_TEMPLATE = "{% extends \"base.html\" %}\n" + lines("<div class=\"row\">{{% block b{i} %}}{{{{ item{i}|safe }}}}{{% endblock %}}</div>\n", 60)

CASES = {   # rule → (path, language, text that must be dropped), (path, language, text that must be kept)
    "compiled_output": (("lib/textwrap.js", "JavaScript", PY + "\n//# sourceMappingURL=textwrap.js.map\n"), ("lib/textwrap.js", "JavaScript", PY)),
    "encoded_data": (("textwrap.py", "Python", PY + f"\nBLOB = '{base64.b64encode(PY.encode()[:3000]).decode()}'\n"), ("textwrap.py", "Python", PY)),
    "xml_header": (("textwrap.py", "Python", '<?xml version="1.0" encoding="utf-8"?>\n' + PY), ("textwrap.py", "Python", PY)),
    "minified": (("textwrap.js", "JavaScript", PY.replace("\n", "; ").replace(";  ", ";")[:20000].replace("; def", ";\ndef")), ("textwrap.js", "JavaScript", PY)),
    "few_lines": (("textwrap.py", "Python", "\n".join(PY.splitlines()[:6])), ("textwrap.py", "Python", PY)),
    "many_lines": (("big.py", "Python", lines("x{i} = {i}\n", 2000)), ("textwrap.py", "Python", PY)),
    "alpha_share": (("t.py", "Python", lines("v = [{i:#06x}, {i}, -{i}, {i}.5]  # {i}\n", 200)), ("textwrap.py", "Python", PY)),
    "digit_share": (("t.py", "Python", lines("TABLE_{i} = ({i}7, 3{i}1, 99{i}5, 12{i}.5)\n", 200)), ("textwrap.py", "Python", PY)),
    "whitespace_share": (("t.py", "Python", "\n".join(" " * 60 + l for l in PY.splitlines())), ("textwrap.py", "Python", PY)),
    "comment_share": (("t.py", "Python", "\n".join("# " + l for l in PY.splitlines()) + "\nx = 1\n"), ("textwrap.py", "Python", PY)),
    "few_comments": (("t.py", "Python", "\n".join(l for l in PY.splitlines() if "#" not in l and '"""' not in l)), ("textwrap.py", "Python", PY)),
    "data_lines": (("t.py", "Python", "TABLE = [\n" + lines("    {i}, {i}.25, 'k{i}', 0x{i:04x},\n", 300) + "]\n"), ("textwrap.py", "Python", PY)),
    "duplicate_lines": (("t.py", "Python", PY[:2000] + lines("    result = compute_the_same_thing(a, b)\n", 300)), ("textwrap.py", "Python", PY)),
    "assert_lines": (("t.py", "Python", "def test_all():\n" + lines("    assert wrap('x{i}') == ['x{i}']\n", 200)), ("textwrap.py", "Python", PY)),
    "html_text": (("index.html", "HTML", HTML_TEMPLATE), ("index.html", "HTML", HTML_PROSE)),
    "python_syntax": (("t.py", "Python", PY + "\nif __name__ == '__main__':\n    print 'hello'\n"), ("textwrap.py", "Python", PY)),
    "python_pass": (("errors.py", "Python", lines("class Error{i}(Exception):\n    pass\n\n", 80)), ("textwrap.py", "Python", PY)),
    "python_imports": (("all.py", "Python", lines("from package.module{i} import name{i}\n", 100) + PY[:1500]), ("textwrap.py", "Python", PY)),
    "python_prints": (("show.py", "Python", lines("print('line {i}', {i})\n", 150)), ("textwrap.py", "Python", PY)),
    "python_defs": (("stubs.py", "Python", lines("def f{i}(x): return x + {i}\n\n", 150)), ("textwrap.py", "Python", PY)),
    "several_mains": (("two.c", "C", C_TEXT + "int main(void)\n{\n    return 0;\n}\n\nint main(int argc, char **argv)\n{\n    return 1;\n}\n"),
                      ("one.c", "C", C_TEXT + "int main(void)\n{\n    return add(1, 2);\n}\n")),
    "preprocessor_lines": (("defs.h", "C", lines("#define CONSTANT_{i} ({i} << 2)\n", 200)), ("one.c", "C", C_TEXT)),
    "language_mismatch": (("textwrap.java", "Java", PY), ("textwrap.py", "Python", PY)),
}


def test_every_rule_has_a_case():
    assert sorted(CASES) == sorted(set(RULE_NAMES) - {"go_test_sample"})


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_drops_its_junk_and_keeps_library_code(rule):
    settings = only(rule, min_comment_share=0.05) if rule == "few_comments" else only(rule, max_lines=1000) if rule == "many_lines" else only(rule)
    bad, good = CASES[rule]
    assert judge([bad, good], settings) == [rule, None]


def test_all_rules_together_keep_real_library_code():
    """Every rule on, defaults: a dozen hand-written standard-library modules are kept."""
    names = ["textwrap", "shlex", "fnmatch", "bisect", "heapq", "glob", "calendar", "contextlib", "dataclasses", "argparse"]
    files = [(f"{n}.py", "Python", (STDLIB / f"{n}.py").read_text()) for n in names]
    assert judge(files, QualitySettings()) == [None] * len(files)


def test_go_test_files_are_sampled_by_id():
    files = [(f"pkg{i}/x_test.go", "Go", PY) for i in range(300)] + [(f"pkg{i}/x.go", "Go", PY) for i in range(50)]
    reasons = judge(files, only("go_test_sample"))
    dropped = sum(r == "go_test_sample" for r in reasons[:300]) / 300
    assert 0.7 < dropped < 0.9 and reasons[300:] == [None] * 50
    assert judge(files, only("go_test_sample")) == reasons             # the same files, the same choice
    assert all(r is None for r in judge(files[:300], only("go_test_sample", go_test_keep=1.0)))


def test_signals_are_stored_for_judged_files_and_null_for_the_others():
    table = records_table([new_record("s", "r", "textwrap.py", 0, text=PY, size=len(PY), language="Python"),
                           new_record("s", "r", "tiny.py", 0, text="x = 1\n", size=6, language="Python")])
    out = apply_filters(table, build_filters(BuildConfig(sources=[{"name": "a", "paths": ["."]}]).filters), None, QualitySettings())
    quality = out.column("quality").to_pylist()
    assert out.column("reason").to_pylist() == [None, "too_small"] and quality[1] is None
    q = quality[0]
    assert q["python_parses"] is True and q["content_language"] == "Python" and q["main_count"] is None
    assert q["lines"] == PY.count("\n") and 0.1 < q["comment_share"] < 0.6 and 0.4 < q["alpha_share"] < 0.8


def write_config(tmp_path, extra: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(f'[[sources]]\nname = "a"\npaths = ["{tmp_path}"]\n[filters]\nrules = "quality"\n{extra}')
    return str(path)


def test_a_threshold_in_the_toml_changes_the_outcome(tmp_path):
    commented = "\n".join("# " + l if i % 20 else l for i, l in enumerate(PY.splitlines()))    # 95% comment lines
    files = [("t.py", "Python", commented), ("t.sh", "Shell", commented)]

    def reasons(extra: str, off: str = '"language_mismatch"') -> list:     # (Python's text under `.sh`: a mismatch)
        config = write_config(tmp_path, f"[filters.quality]\noff = [{off}]\n{extra}")
        return judge(files, load_config(config).filters.quality.settings())
    assert reasons("") == ["comment_share", "comment_share"]
    assert reasons("max_comment_share = 0.99\n") == [None, None]
    assert reasons("[filters.quality.languages.Python]\nmax_comment_share = 0.99\n") == [None, "comment_share"]
    assert reasons("", off='"language_mismatch", "comment_share"') == [None, None]


@pytest.mark.parametrize("extra, message", [
    ('[filters]\nrules = "strict"\n', "filters.rules"),
    ('[filters.quality]\noff = ["commentshare"]\n', "unknown rule 'commentshare'; allowed: compiled_output"),
    ("[filters.quality]\nmax_comment_share = 1.5\n", "filters.quality.max_comment_share"),
    ("[filters.quality.languages.Pyton]\nmax_comment_share = 0.9\n", "unknown language 'Pyton'"),
    ("[filters.quality.languages.Python]\nmax_coment_share = 0.9\n", "unknown threshold for Python: .max_coment_share.; allowed: min_lines"),
    ("[filters.quality.languages.Python]\nmax_comment_share = 2\n", "max_comment_share"),
])
def test_bad_quality_config_fails_fast_naming_the_key(tmp_path, extra, message):
    path = tmp_path / "c.toml"
    path.write_text(f'[[sources]]\nname = "a"\npaths = ["{tmp_path}"]\n{extra}')
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")) as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_codegeex_rules_keep_the_records_of_before():
    """`rules = "codegeex"` (the default) runs no quality rule and stores no signal; its kept records
    equal those of the quality machinery with every rule off (the shards are made from these)."""
    texts = [p.read_text() for p in sorted(STDLIB.glob("*.py"))[:120]]
    table = records_table([new_record("s", "r", f"f{i}.py", 0, text=t, size=len(t.encode())) for i, t in enumerate(texts)])
    cfg = BuildConfig(sources=[{"name": "a", "paths": ["."]}])
    bands, rows = near_dedup.lsh_params(cfg.dedup.near.threshold, cfg.dedup.near.num_perm)

    def run(quality):
        s = per_file.PerFileSettings(include=tuple(cfg.languages.include), min_confidence=0.3, filters=tuple(build_filters(cfg.filters)),
                                     licenses=LicensePolicy(["mit"], "keep"), redact_secrets=True, max_secret_fraction=0.5,
                                     decontaminator=None, comment_sample=0.0, near=per_file.NearDedupSettings(64, 5, 1, 8, 8),
                                     quality=quality)
        return per_file.process(table, s)[0]["kept"]
    plain, off = run(None), run(QualitySettings(off=frozenset(RULE_NAMES)))
    assert plain.column("quality").null_count == plain.num_rows > 100
    assert off.column("quality").null_count == 0
    assert plain.drop_columns(["quality"]).equals(off.drop_columns(["quality"]))
    everything = run(QualitySettings())
    assert everything.num_rows < plain.num_rows       # with the rules on, the same input loses files
