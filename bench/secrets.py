"""Secrets and personal data: recall on planted secrets, false positives on clean real code, MB/s.

Planted: every kind the clean stage knows (AWS key id and secret, GCP API key and service-account
key, GitHub/GitLab/Slack/Stripe/OpenAI-style tokens, JWTs, PEM private keys, passwords in URLs and
in assignments, e-mail and public IP addresses), generated here with a seeded RNG and written into
realistic places: `.env` files, YAML and JSON config, and real Python/C/JavaScript source files of
this machine (stdlib, site-packages) at line boundaries. A planted value counts as found when it
is gone from the redacted text. Clean: real source files of this machine as they are; every
key or password found there is counted as a false positive (the e-mail and IP addresses found in
clean code are real ones — authors' addresses, public servers — and are listed separately).
Targets: recall ≥ 0.98, ≤ 1 false positive per 10 MB of clean code, ≥ 20 MB/s per core.

    .venv/bin/python -m bench.secrets [--mb N]
"""
from __future__ import annotations

import argparse
import json
import random
import string
import sysconfig
import time
from collections import Counter
from pathlib import Path

from stages.secrets import find_secrets, redact

CLEAN_SUFFIXES = (".py", ".c", ".js", ".cfg", ".toml", ".ini", ".json", ".yaml", ".yml", ".sh")


def clean_files(mb: float) -> list[tuple[str, str]]:
    out, total = [], 0
    for root in dict.fromkeys((sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"])):
        for path in sorted(Path(root).rglob("*")):
            if path.suffix in CLEAN_SUFFIXES and path.is_file() and path.stat().st_size < 500_000:
                try:
                    text = path.read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                out.append((str(path), text))
                total += len(text.encode())
                if total > mb * 1e6:
                    return out
    return out


class Planter:
    """Random, well-formed secrets of each kind."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def chars(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def password(self) -> str:
        return self.chars(4, string.ascii_uppercase) + self.chars(4, string.digits) + self.chars(2, "!#%^*-_") + self.chars(4)

    def ip(self) -> str:
        return f"{self.rng.choice([34, 52, 104, 151, 185])}.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"

    def email(self) -> str:
        return f"{self.chars(6, string.ascii_lowercase)}.{self.chars(5, string.ascii_lowercase)}@{self.chars(7, string.ascii_lowercase)}.com"

    def pem(self) -> str:
        body = "\n".join(self.chars(64, string.ascii_letters + string.digits + "+/") for _ in range(6))
        return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"

    def values(self) -> dict[str, str]:
        b64 = string.ascii_letters + string.digits + "+/"
        return {
            "aws_access_key_id": "AKIA" + self.chars(16, string.ascii_uppercase + string.digits),
            "aws_secret_access_key": self.chars(40, b64),
            "gcp_api_key": "AIza" + self.chars(35, string.ascii_letters + string.digits + "-_"),
            "gcp_private_key_id": self.chars(40, "0123456789abcdef"),
            "github_token": "ghp_" + self.chars(36),
            "gitlab_token": "glpat-" + self.chars(20),
            "slack_token": "xoxb-" + self.chars(12, string.digits) + "-" + self.chars(24),
            "stripe_key": "sk_live_" + self.chars(24),
            "openai_key": "sk-proj-" + self.chars(48),
            "jwt": "eyJ" + self.chars(30) + ".eyJ" + self.chars(40) + "." + self.chars(43, string.ascii_letters + string.digits + "-_"),
            "url_password": self.password(),
            "assigned_secret": self.password(),
            "email": self.email(),
            "ip_address": self.ip(),
        }


def planted_documents(p: Planter, hosts: list[tuple[str, str]]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(name, text, [(kind, value)]) for .env, YAML, JSON and real source files with secrets planted."""
    docs = []
    for i, (path, code) in enumerate(hosts):
        v = p.values()
        pem = p.pem()
        env = (f"# production settings\nAWS_ACCESS_KEY_ID={v['aws_access_key_id']}\nAWS_SECRET_ACCESS_KEY={v['aws_secret_access_key']}\n"
               f"DATABASE_URL=postgres://app:{v['url_password']}@db.internal.example.org:5432/main\n"
               f"STRIPE_SECRET_KEY={v['stripe_key']}\nDB_PASSWORD={v['assigned_secret']}\nADMIN_EMAIL={v['email']}\n")
        docs.append((f"{i}.env", env, [(k, v[k]) for k in ("aws_access_key_id", "aws_secret_access_key", "url_password",
                                                             "stripe_key", "assigned_secret", "email")]))
        w = p.values()
        yaml = (f"slack:\n  token: {w['slack_token']}\n  channel: '#deploys'\nserver:\n  host: {w['ip_address']}\n  port: 8443\n"
                f"gitlab:\n  api_token: {w['gitlab_token']}\nsmtp:\n  password: \"{w['assigned_secret']}\"\n")
        docs.append((f"{i}.yaml", yaml, [(k, w[k]) for k in ("slack_token", "ip_address", "gitlab_token", "assigned_secret")]))
        x = p.values()
        account = json.dumps({"type": "service_account", "project_id": "demo-project", "private_key_id": x["gcp_private_key_id"],
                              "private_key": pem + "\n", "client_email": x["email"], "client_id": "1093"}, indent=2)
        docs.append((f"{i}-service-account.json", account, [("gcp_private_key_id", x["gcp_private_key_id"]),
                                                              ("private_key", pem.splitlines()[3]), ("email", x["email"])]))
        y = p.values()
        cut = code.index("\n", len(code) // 2) + 1
        if path.endswith(".py"):
            lines = (f'GITHUB_TOKEN = "{y["github_token"]}"\nOPENAI_API_KEY = "{y["openai_key"]}"\n'
                     f'GOOGLE_MAPS_KEY = "{y["gcp_api_key"]}"  # maintainer: {y["email"]}\n')
        elif path.endswith(".js"):
            lines = (f'const githubToken = "{y["github_token"]}";\nconst openai = new OpenAI({{ apiKey: "{y["openai_key"]}" }});\n'
                     f'const mapsKey = "{y["gcp_api_key"]}"; // maintainer: {y["email"]}\n')
        else:
            lines = (f'static const char *github_token = "{y["github_token"]}";\nstatic const char *openai_key = "{y["openai_key"]}";\n'
                     f'static const char *maps_key = "{y["gcp_api_key"]}"; /* maintainer: {y["email"]} */\n')
        lines += f'// auth header: Bearer {y["jwt"]}\n' if not path.endswith(".py") else f'AUTH = "Bearer {y["jwt"]}"\n'
        docs.append((path, code[:cut] + lines + code[cut:], [(k, y[k]) for k in ("github_token", "openai_key", "gcp_api_key", "email", "jwt")]))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=100, help="clean code to scan")
    args = parser.parse_args()
    clean = clean_files(args.mb)
    hosts = [(path, text) for path, text in clean if path.endswith((".py", ".c", ".js")) and len(text) > 3000][::50][:200]
    docs = planted_documents(Planter(0), hosts)

    found_by_kind, planted_by_kind = Counter(), Counter()
    for _, text, planted in docs:
        out = redact(text).text
        for kind, value in planted:
            planted_by_kind[kind] += 1
            found_by_kind[kind] += value not in out
    recall = sum(found_by_kind.values()) / sum(planted_by_kind.values())
    print(f"planted: {sum(planted_by_kind.values()):,} secrets in {len(docs):,} files (.env, YAML, JSON, real .py/.c/.js)")
    for kind in sorted(planted_by_kind):
        print(f"  {kind:<24} {found_by_kind[kind]:>4} / {planted_by_kind[kind]:<4} {found_by_kind[kind] / planted_by_kind[kind]:.3f}")
    print(f"recall: {recall:.4f} (target ≥ 0.98)")

    nbytes = sum(len(t.encode()) for _, t in clean)
    start = time.perf_counter()
    found = [(path, find_secrets(text)) for path, text in clean]
    seconds = time.perf_counter() - start
    false_positives, pii = [], Counter()
    for path, spans in found:
        for s, e, kind, placeholder in spans:
            if placeholder in ("<KEY>", "<PASSWORD>"):
                false_positives.append((path, kind))
            else:
                pii[kind] += 1
    per_10mb = len(false_positives) / (nbytes / 1e7)
    print(f"clean real code: {len(clean):,} files, {nbytes / 1e6:.1f} MB")
    print(f"  false positives (keys/passwords): {len(false_positives)} = {per_10mb:.2f} per 10 MB (target ≤ 1)")
    for path, kind in false_positives[:10]:
        print(f"    {kind}: {path}")
    print(f"  real addresses redacted in clean code: {dict(pii)}")
    print(f"speed: {nbytes / seconds / 1e6:.1f} MB/s on one core (target ≥ 20; detect-secrets, BigCode's tool: ~0.4)")


if __name__ == "__main__":
    main()
