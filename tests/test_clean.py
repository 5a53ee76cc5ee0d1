"""Secrets and personal data redacted, key files dropped, benchmark solutions found (the clean stage)."""
import json

import pytest

from conftest import STDLIB, stdlib_files
from codecorpus.stages.clean import clean_batch
from codecorpus.stages.decontaminate import Decontaminator
from codecorpus.stages.records import new_record, records_table
from codecorpus.stages.secrets import redact
from codecorpus.stages.summary import books_balance, merge, summarize

PLANTED = {
    "aws_access_key_id": ('AWS_ACCESS_KEY_ID = "AKIA2E0A8F3B244C9986"\n', "<KEY>"),
    "aws_secret_access_key": ('aws_secret_access_key = "q8Zr2Lw9Xk1Vb7Nc3Mf5Hd0Jp4Tg6Ys2Ue8Ri1Oa"\n', "<KEY>"),
    "gcp_api_key": ('const key = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY";\n', "<KEY>"),
    "github_token": ('token: ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3sXY\n', "<KEY>"),
    "gitlab_token": ('GITLAB = "glpat-x2Yz9Kq4Lm7Np1Rs5Tv8"\n', "<KEY>"),
    "slack_token": ('SLACK = "xoxb-2048-4096-Zk9xQ2mL7pR4vT1n"\n', "<KEY>"),
    "stripe_key": ('stripe.api_key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"\n', "<KEY>"),
    "openai_key": ('client = OpenAI(api_key="sk-proj-Zq8Xr2Lw9Vk1Bb7Nc3Mf5Hd0Jp4Tg6Ys")\n', "<KEY>"),
    "jwt": ('auth = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"\n', "<KEY>"),
    "url_password": ('DATABASE_URL = "postgres://app:Wq9!zX2#rT7v@db.prod.acme.io:5432/main"\n', "<PASSWORD>"),
    "assigned_secret": ('DB_PASSWORD=Xk9mQ2vL7pR4s\n', "<PASSWORD>"),
    "email": ('# maintainer: jane.doe@acme-robotics.io\n', "<EMAIL>"),
    "ip_address": ('SERVER = "52.94.236.248"\n', "<IP_ADDRESS>"),
}


def test_every_provider_format_is_redacted_under_a_name_that_says_nothing():
    """One token of every provider kind (made to its documented format by bench.secrets), under a neutral
    name: the format alone gives it away, both through the batch screen and without it."""
    from bench.secrets import FORMATS, Planter
    from codecorpus.stages.secret_formats import PROVIDERS
    from codecorpus.stages.secrets import screen
    planter = Planter(7)
    provider_kinds = {entry[0] for entry in PROVIDERS}
    assert len(provider_kinds) >= 40
    lines = {kind: f'opt_{i} = "{planter.value(kind)[1]}"\n' for i, kind in enumerate(sorted(provider_kinds & set(FORMATS)))}
    hits = screen(list(lines.values()) + ["x = 1\n"])
    assert hits == [True] * len(lines) + [False]
    for (kind, line), hit in zip(lines.items(), hits):
        for screened in (hit, None):
            assert redact(line, screened).counts == {kind: 1}, (kind, line)


@pytest.mark.parametrize("line, found", [
    ('password = "Summer2024!"\n', True),                  # chosen, low entropy: still a password
    ("DB_PASS=Dr@g0n77\n", True),
    ('cfg.Set("smtp_password", "Princess2019#")\n', True),  # a name and its value as two strings
    ('<add key="AdminPwd" value="$Ginger3012" />\n', True),
    ('conn = "Server=db;Database=app;User Id=sa;Password=Tr0ub4dor&3;"\n', True),
    ('url = "jdbc:mysql://db:3306/app?user=app&password=Winter22!x&ssl=true"\n', True),
    ("password = os.environ['DB_PASSWORD']\n", False),     # references, placeholders, code, samples
    ('password: ${DB_PASSWORD}\n', False),
    ('password = "$DB_PASSWORD"\n', False),
    ('password = "<your password>"\n', False),
    ('password = "test1234"\n', False),
    ("password = get_password(user)\n", False),
    ('compass = "North2024!"\n', False),
    ("DB_PASSWORD=QnLqFWfDNJGhja\n", True),               # a `.env` line whose password is letters only
    ("ENV DB_PASSWORD=QnLqFWfDNJGhja\n", True),           # Dockerfile ENV, both forms
    ("ENV MYSQL_ROOT_PASSWORD Xk29!pq_Lm0z\n", True),
    ("ENV DB_PASSWORD=${DB_PASSWORD}\n", False),
    ("DB_PASSWORD=postgres\n", False),                    # one case: a word, not a chosen password
    ("PASSWORD=MyPassword\n", False),
])
def test_passwords_people_choose_and_connection_strings(line, found):
    out = redact(line)
    assert ("<PASSWORD>" in out.text) is found, out.text


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_each_kind_is_redacted_in_real_code(kind):
    code = (STDLIB / "json" / "decoder.py").read_text()
    line, placeholder = PLANTED[kind]
    cut = code.index("\n", 2000) + 1                       # planted on a line of its own
    text = code[:cut] + line + code[cut:]
    out = redact(text)
    assert out.counts == {kind: 1} and placeholder in out.text
    assert out.text.startswith(code[:cut]) and out.text.endswith(code[cut:])


def test_private_key_block_and_ipv6():
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1x2\nq8Zr2Lw9Xk1Vb7Nc==\n-----END RSA PRIVATE KEY-----\n"
    out = redact("KEY = '''\n" + key + "'''\nhost = '2001:4860:4860::8888'\n")
    assert out.counts == {"private_key": 1, "ip_address": 1}


def test_clean_code_is_left_alone():
    keep = ["version = '1.2.3.4'", "HOST = '192.168.1.10'", "LOOPBACK = '127.0.0.1'", "DOC = '203.0.113.7'",
            "std::vector<int> v; a::b::c();", "password = getpass.getpass()", "password = os.environ['DB_PASSWORD']",
            "token_type = 'bare-quoted-string'", "TOKEN_PREFIX = 'k8s-aws-v1.'", "self.password = password",
            "url = 'https://user:pass@host/path'", "api_key = '<YOUR_API_KEY>'", "secret = '${SECRET}'"]
    for line in keep:
        assert redact(line + "\n").counts == {}, line
    for path in stdlib_files(limit=200):
        found = redact(path.read_text()).counts
        assert not {k for k in found if k not in ("email", "ip_address")}, (path, found)


def rows(texts):
    return records_table([new_record("s", "r", f"f{i}.py", 0, text=t, size=len(t)) for i, t in enumerate(texts)])


def test_clean_stage_drops_key_files_and_keeps_the_books():
    code = (STDLIB / "json" / "decoder.py").read_text()
    key_file = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" * 20 + "-----END OPENSSH PRIVATE KEY-----\n"
    table = clean_batch(rows([code + PLANTED["email"][0], key_file, code]))
    out = table.to_pylist()
    assert out[0]["status"] == "kept" and "<EMAIL>" in out[0]["text"] and dict(out[0]["redactions"]) == {"email": 1}
    assert (out[1]["status"], out[1]["reason"], out[1]["text"]) == ("dropped", "mostly_secrets", None)
    assert out[2]["text"] == code and out[2]["redactions"] is None
    books = merge([summarize(table)])
    assert books_balance(books) and books["redactions"] == {"email": 1}


def humaneval_file(path, solutions):
    with open(path, "w") as fh:
        for i, (prompt, solution) in enumerate(solutions):
            fh.write(json.dumps({"task_id": f"HumanEval/{i}", "prompt": prompt, "canonical_solution": solution,
                                 "test": "def check(candidate):\n    assert True\n", "entry_point": "f"}) + "\n")
    return path


def test_decontamination_names_the_benchmark_item(tmp_path):
    files = stdlib_files(limit=60, min_bytes=3000)
    texts = [t for t in (p.read_text() for p in files) if "\ndef " in t][:20]
    # Benchmark items made from real functions: one verbatim in the corpus, one reformatted, one absent.
    target = texts[3]
    start = target.index("\ndef ") + 1
    func = target[start:target.index("\n\n", start + 200)]
    prompt, solution = func.split("\n", 1)[0] + "\n", func.split("\n", 1)[1]
    reformatted = texts[7][texts[7].index("\ndef ") + 1:][:600]
    bench = humaneval_file(tmp_path / "HumanEval.jsonl", [
        (prompt, solution), ("", reformatted.replace("    ", "\t")), ("def novel():\n", "    return 'nothing like this anywhere'\n" * 3)])
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text(json.dumps({"task_id": 11, "text": "x", "code": texts[12][len(texts[12]) // 2:][:600], "test_list": []}) + "\n")
    dc = Decontaminator([str(bench), str(mbpp)], ngram=10, threshold=0.5)
    table = clean_batch(rows(texts), decontaminator=dc).to_pylist()
    reasons = {i: r["reason"] for i, r in enumerate(table) if r["status"] == "dropped"}
    assert reasons == {3: "benchmark:HumanEval/HumanEval/0", 7: "benchmark:HumanEval/HumanEval/1", 12: "benchmark:mbpp/11"}


@pytest.mark.parametrize("line, password, host", [
    ('REDIS = "redis://:Zp7Lq2Wx9Kd3@cache-1:6379/0"\n', "Zp7Lq2Wx9Kd3", "@cache-1:6379/0"),            # empty user
    ("DSN = 'postgresql://admin:S3cr3t@db.example.org:5432/app'\n", "S3cr3t", "@db.example.org:5432/app"),  # dotted host
    ('url = "mongodb://svc:hX4-pQ9@[2001:db8::17]:27017/?authSource=admin"\n', "hX4-pQ9", "@[2001:db8::17]:27017"),  # IPv6
    ('amqp://guest:Rb7mK2vq@10.0.0.5:5672/vhost?heartbeat=30\n', "Rb7mK2vq", "@10.0.0.5:5672/vhost?heartbeat=30"),  # port, query
    ('  "https://deploy:gh7Tq2z@git.example.com/org/repo.git"\n', "gh7Tq2z", "@git.example.com/org/repo.git"),
])
def test_url_passwords_are_counted_as_such_and_the_host_is_kept(line, password, host):
    done = redact(line)
    assert done.counts == {"url_password": 1}, done
    assert password not in done.text and "<PASSWORD>" + host in done.text


@pytest.mark.parametrize("line", [
    'url = "postgresql://user:${DB_PASSWORD}@db.example.org/app"\n',      # a reference
    "url = 'https://user:pass@host/path'\n",                              # a sample value
    'see "https://jane@example.org/~jane/" for details\n',               # a user, no password: not an e-mail either
])
def test_url_references_and_samples_stay(line):
    assert redact(line).counts == {}
