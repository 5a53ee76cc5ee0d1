"""The byte-level BPE: exact vocabulary size, CodeGeeX's whitespace tokens, lossless round trips."""
import json

import pytest

from codecorpus.tokenizer.bpe import EOD_TOKEN, VocabularyTooSmall, load_tokenizer, train_bpe
from codecorpus.tokenizer.special import special_ids


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory):
    from conftest import stdlib_files
    texts = [p.read_text(encoding="utf-8") for p in stdlib_files(limit=120)]
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_bpe(texts, vocab_size=4096).save(str(path))
    return path


@pytest.fixture(scope="module")
def tok(tok_path):
    return load_tokenizer(tok_path)


def test_exact_vocabulary_size_and_eod(tok):
    assert tok.get_vocab_size() == 4096
    assert tok.token_to_id(EOD_TOKEN) == 0
    assert special_ids(tok) == {"eod": 0, "fim_prefix": 1, "fim_middle": 2, "fim_suffix": 3, "fim_pad": 4, "repo_name": 5,
                                "file_sep": 6}


def test_fim_prompt_is_ids_the_text_cannot_spell(tok):
    """The inference prompt puts the FIM ids around the encoded pieces; the same layout written as text
    encodes to ordinary tokens (so corpus text can never fake it)."""
    from codecorpus.tokenizer.special import fim_prompt_ids
    ids = special_ids(tok)
    psm = fim_prompt_ids(tok, "def add(a, b):\n", "\n", language_tag="# language: Python\n")
    spm = fim_prompt_ids(tok, "def add(a, b):\n", "\n", spm=True)
    assert psm[-1] == ids["fim_middle"] and psm.count(ids["fim_prefix"]) == 1 and psm.count(ids["fim_suffix"]) == 1
    assert tok.decode(psm) == "# language: Python\n<fim_prefix>def add(a, b):\n<fim_suffix>\n<fim_middle>"
    assert spm[:2] == [ids["fim_prefix"], ids["fim_suffix"]] and tok.decode(spm).endswith("<fim_middle>def add(a, b):\n")
    assert not set(tok.encode(tok.decode(psm)).ids) & set(ids.values())


def test_space_runs_are_single_tokens_longest_first_in_codegeex_scheme():
    from conftest import stdlib_files
    tok = train_bpe([p.read_text(encoding="utf-8") for p in stdlib_files(limit=60)], vocab_size=2048, pre_tokenizer="gpt2")
    for n in range(2, 11):
        ids = tok.encode("x" + " " * n + "y").ids
        assert tok.id_to_token(ids[1]) == " " * n
    ids = tok.encode(" " * 23 + "return").ids
    assert [tok.id_to_token(i) for i in ids[:3]] == [" " * 10, " " * 10, " " * 3]


def test_a_line_break_and_the_next_lines_indentation_are_one_token(tok):
    """The code pre-tokenizer keeps `):` + newline + indentation (and blank lines + indentation)
    together, so the BPE trained on Python learns them as single tokens."""
    tokens = tok.encode("def f(x):\n        return x\n\n    y = 1\n").tokens
    assert "):ĊĠĠĠĠĠĠĠĠ" in tokens and "return" in tokens
    assert any(t.startswith("ĊĊ") and t.endswith("ĠĠĠĠ") for t in tokens), tokens
    with pytest.raises(ValueError, match="code, gpt4, gpt2"):
        train_bpe(["x"], vocab_size=300, pre_tokenizer="bert")


@pytest.mark.parametrize("text", [
    "def f(x):\r\n\treturn x  # tab and CRLF\r\n",
    "s = 'naïve café — 日本語 — 🐍'\n",
    "marker = '<|endoftext|>'  # literal text, not the special token\n",
    "s = '<fim_prefix>a<fim_suffix>b<fim_middle>c<fim_pad><|repo_name|>r<|file_sep|>p'\n",
    "\u200b zero width \x0b vertical tab \x00 nul\n",
])
def test_lossless_and_literal_eod_stays_text(tok, text):
    enc = tok.encode(text)
    assert tok.decode(enc.ids) == text
    assert not set(enc.ids) & set(special_ids(tok).values())


def test_stdlib_round_trips(tok):
    from conftest import stdlib_files
    for p in stdlib_files(limit=40):
        text = p.read_text(encoding="utf-8")
        assert tok.decode(tok.encode(text).ids) == text


def test_transformers_reads_tokenizer_json_with_the_same_ids(tok, tok_path):
    """tokenizer.json is self-contained: no Python-side pre-processing in either library."""
    from conftest import stdlib_files
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast(tokenizer_file=str(tok_path))
    texts = [p.read_text(encoding="utf-8") for p in stdlib_files(limit=15)]
    texts += ["x" + " " * 23 + "y\r\n\t'<|endoftext|>' 日本語 🐍\n"]
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert hf(text, add_special_tokens=False)["input_ids"] == ids
        assert hf.decode(ids) == text
    assert len(hf) == 4096 and hf.convert_tokens_to_ids(EOD_TOKEN) == 0


def test_too_small_a_sample_is_a_clear_error():
    with pytest.raises(VocabularyTooSmall, match="sample"):
        train_bpe(["x = 1\n"], vocab_size=52_224)


def gpt2_style_files(tmp_path):
    """A small GPT-2-shaped vocab.json / merges.txt made at test time (EOD is the last base id, as in GPT-2)."""
    from conftest import stdlib_files
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=1999, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator((p.read_text(encoding="utf-8") for p in stdlib_files(limit=80)), trainer=trainer)
    tok.model.save(str(tmp_path))
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    vocab[EOD_TOKEN] = len(vocab)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    return tmp_path / "vocab.json", tmp_path / "merges.txt", len(vocab)


def test_codegeex_scheme_from_gpt2_files(tmp_path):
    from codecorpus.tokenizer.codegeex import codegeex_tokenizer
    vocab_file, merges_file, base = gpt2_style_files(tmp_path)
    tok = codegeex_tokenizer(vocab_file, merges_file)
    assert tok.get_vocab_size() == base + 143 + 6                   # 50,257 + 143 = 50,400 for GPT-2's files, + 6 special
    for n in range(2, 11):                                          # n spaces → <|extratoken_{n+8}|> = base + 7 + n
        assert tok.encode("x" + " " * n + "y").ids[1] == base + 7 + n
    assert tok.token_to_id("<|extratoken_1|>") == base and tok.token_to_id("<|extratoken_143|>") == base + 142
    text = "def f():\n" + " " * 23 + "return '<|endoftext|>'\r\n\tx = 'é'\n"
    ids = tok.encode(text).ids
    assert tok.decode(ids) == text and tok.token_to_id(EOD_TOKEN) not in ids
    assert ids[ids.index(base + 17):][:3] == [base + 17, base + 17, base + 10]   # 23 spaces → 10, 10, 3
    special = special_ids(tok)                                      # codecorpus's tokens after CodeGeeX's ids
    assert [special[r] for r in ("fim_prefix", "fim_middle", "fim_suffix", "fim_pad", "repo_name", "file_sep")] == \
        list(range(base + 143, base + 149)) and special["eod"] == base - 1
    spelled = "s = '<fim_middle><|file_sep|><|repo_name|>'\n"
    assert not set(tok.encode(spelled).ids) & set(special.values()) and tok.decode(tok.encode(spelled).ids) == spelled


def _real_code_of_many_languages(limit: int = 600, max_bytes: int = 65_536) -> list[str]:
    """Real files of this machine: Python, C/C++ headers, Cython, HTML/CSS/JS, shell, text, plus edge
    cases; the first (in path order) of each suffix, up to `max_bytes` each, each tree walked once."""
    import os
    import sysconfig
    suffixes = (".py", ".pyx", ".pxd", ".h", ".hpp", ".c", ".cpp", ".cu", ".js", ".html", ".css", ".sh", ".rst", ".md", ".json")
    texts = []
    for root in (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]):
        found: dict[str, list[str]] = {suffix: [] for suffix in suffixes}
        for folder, _, names in os.walk(root):
            for name in names:
                suffix = os.path.splitext(name)[1]
                if suffix in found:
                    found[suffix].append(os.path.join(folder, name))
        for suffix in suffixes:
            for path in sorted(found[suffix])[:limit // len(suffixes)]:
                try:
                    if os.path.getsize(path) <= max_bytes:
                        with open(path, encoding="utf-8") as fh:
                            texts.append(fh.read())
                except (UnicodeDecodeError, OSError):
                    pass
    return texts + ["a" + " " * 23 + "b", "\n\n   x", "x  \n", "  ", " " * 11 + "y", "\t   \t", "\u3000  a",
                    "e\u0301  b\r\n  c", "it's  'll 've", "x = '\ufdd3'  # a stand-in character in the text", "🙂  😀 ", ""]


def test_fast_encoder_gives_the_same_ids_as_tokenizers(tok, tmp_path):
    """tiktoken-speed encoding (tokenizer/fast.py) equals `tokenizers` id for id, for the trained BPE
    and for CodeGeeX's scheme, on real code of many languages."""
    from codecorpus.tokenizer.codegeex import codegeex_tokenizer
    from codecorpus.tokenizer.fast import fast_encoder
    vocab_file, merges_file, _ = gpt2_style_files(tmp_path)
    texts = _real_code_of_many_languages()
    assert len(texts) > 300
    for tokenizer in (tok, codegeex_tokenizer(vocab_file, merges_file)):
        encode = fast_encoder(tokenizer)
        assert encode is not None
        expected = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
        assert [encode(t) for t in texts] == expected


def test_a_tokenizer_of_another_shape_gets_no_fast_encoder():
    from tokenizers import Tokenizer, models, pre_tokenizers

    from codecorpus.tokenizer.fast import fast_encoder
    wordlevel = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    wordlevel.pre_tokenizer = pre_tokenizers.Whitespace()
    assert fast_encoder(wordlevel) is None
