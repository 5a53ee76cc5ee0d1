"""Per-block summaries merge into the same statistics as one summary of everything."""
import pyarrow as pa

from codecorpus.stages.comments import comment_language
from codecorpus.stages.filters import text_metrics
from codecorpus.stages.summary import books_balance, merge, summarize
from test_read_scraped import ingest


def test_summaries_merge_like_one(scraped_tree):
    table = ingest(scraped_tree)
    kept = table.filter(pa.compute.equal(table.column("status"), "kept"))
    metrics = text_metrics(kept.column("text"))
    for name in ("line_max", "line_mean", "alnum_frac"):
        values = metrics[name]
        kept = kept.set_column(kept.schema.get_field_index(name), name, values)
    whole = merge([summarize(kept)])
    parts = merge([summarize(kept.slice(0, 7)), summarize(kept.slice(7, 30)), summarize(kept.slice(37))])
    assert whole == parts
    assert books_balance(whole) and whole["in"] == kept.num_rows
    assert sum(whole["histograms"]["line_mean"]["in"]) == kept.num_rows
    assert sum(whole["histograms"]["size"]["kept"]) == kept.num_rows


def test_text_metrics_match_python(stdlib_texts):
    texts = ["ab\ncdef\n", "x" * 10, "a = 1  # ü\n\nlong line here\n", "", "a\r\nb\rc\x0bd\u2028é\n\n", "①②③ ß"]
    texts += stdlib_texts
    m = text_metrics(pa.chunked_array([texts]))
    for i, t in enumerate(texts):
        lengths = [len(line) for line in t.splitlines()] or [0]
        assert m["bytes"][i].as_py() == len(t.encode())
        assert m["line_max"][i].as_py() == max(lengths)
        assert abs(m["line_mean"][i].as_py() - sum(lengths) / len(lengths)) < 1e-4
        assert abs(m["alnum_frac"][i].as_py() - sum(c.isalnum() for c in t) / max(len(t), 1)) < 1e-6


def test_comment_language_of_real_code(stdlib_texts):
    found = [comment_language(t, "Python") for t in stdlib_texts[:10]]
    assert found.count("en") >= 8
    assert comment_language("x = 1  # ok\n", "Python") is None
    assert comment_language("// Dies ist ein Kommentar über die Verarbeitung der Eingabedaten und Fehler\nint x;\n"
                            "// Diese Funktion berechnet die Summe aller Werte in der Liste\n", "C") == "de"


def test_the_build_stops_when_a_record_goes_missing_between_stages(scraped_tree, tmp_path):
    """Books of two consecutive stages made from real records, one record removed between them:
    the build's conservation check names the stage, the source and the count."""
    import pytest

    from codecorpus.pipeline.build import Build
    from codecorpus.pipeline.config import BuildConfig
    from codecorpus.pipeline.errors import BuildError
    from codecorpus.pipeline.rundir import RunDir
    table = ingest(scraped_tree)
    kept = table.filter(pa.compute.equal(table.column("status"), "kept"))
    build = Build(BuildConfig(sources=[{"name": "s", "paths": [str(scraped_tree)]}]), RunDir(tmp_path / "run"), "")
    (tmp_path / "run").mkdir()
    build.keep_books("01_ingest", merge([summarize(table)]))
    build.keep_books("02_language", merge([summarize(kept)]))                 # every kept record arrived: fine
    with pytest.raises(BuildError, match=r"stage 03_filter: 1 record\(s\) \(\d[\d,]* bytes\) of source .* went missing "
                                         r"between 02_language \(kept \d+\) and 03_filter"):
        build.keep_books("03_filter", merge([summarize(kept.slice(1))]))     # one record lost on the way
