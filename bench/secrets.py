"""Secrets and personal data: recall against planted secrets and an independent oracle, false positives
on clean real code, MB/s.

Planted: for every kind below, values made to the format the provider documents for it (prefix,
length, alphabet — the table `FORMATS`, written from the providers' token-format pages, not from
stages.secrets' patterns), plus passwords people choose (`Summer2024!`-style) and connection
strings. Each is written into one of 12 syntaxes (Python, JavaScript, Go, YAML, `.env`, JSON,
Java `.properties`, shell `export`, Dockerfile `ENV`, TOML, XML, a connection string in code),
half under a name that says what it is and half under a neutral one, inside real source files of
this machine. A planted value counts as found when it is gone from the redacted text.

Oracle: `detect-secrets` (Yelp; bench-only dependency) runs on the same planted files and on the
clean code; every value it reports that we leave in place is printed, and its findings on the
planted files give a second recall figure. Clean: real files of this machine as they are; every key
or password we find there is a false positive, listed. Targets: recall ≥ 0.98 overall and ≥ 0.95 for
every kind, ≤ 1 false positive per 10 MB, ≥ 20 MB/s per core.

    .venv/bin/python -m bench.secrets [--mb N] [--per-kind N] [--oracle-mb N]
"""
from __future__ import annotations

import argparse
import random
import string
import sysconfig
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from codecorpus.stages.secrets import find_secrets, redact, screen

CLEAN_SUFFIXES = (".py", ".c", ".js", ".cfg", ".toml", ".ini", ".json", ".yaml", ".yml", ".sh")
B62 = string.ascii_letters + string.digits
URLSAFE = B62 + "-_"
HEX = "0123456789abcdef"
B64 = B62 + "+/"

# kind → (a name a user would give it, the documented format as parts: a literal, or (alphabet, length))
FORMATS: dict[str, tuple[str, list]] = {
    "aws_access_key_id": ("AWS_ACCESS_KEY_ID", ["AKIA", (string.ascii_uppercase + "234567", 16)]),
    "gcp_api_key": ("GOOGLE_API_KEY", ["AIza", (URLSAFE, 35)]),
    "github_token": ("GITHUB_TOKEN", ["ghp_", (B62, 36)]),
    "github_fine_grained_token": ("GH_PAT", ["github_pat_", (B62, 22), "_", (B62, 59)]),
    "gitlab_token": ("GITLAB_TOKEN", ["glpat-", (URLSAFE, 20)]),
    "gitlab_runner_registration": ("RUNNER_TOKEN", ["GR1348941", (URLSAFE, 20)]),
    "npm_token": ("NPM_TOKEN", ["npm_", (B62, 36)]),
    "pypi_token": ("PYPI_API_TOKEN", ["pypi-AgEIcHlwaS5vcmc", (URLSAFE, 70)]),
    "rubygems_token": ("GEM_HOST_API_KEY", ["rubygems_", (HEX, 48)]),
    "nuget_key": ("NUGET_API_KEY", ["oy2", (string.ascii_lowercase + string.digits, 43)]),
    "docker_hub_token": ("DOCKERHUB_TOKEN", ["dckr_pat_", (URLSAFE, 27)]),
    "huggingface_token": ("HF_TOKEN", ["hf_", (string.ascii_letters, 34)]),
    "bitbucket_app_password": ("BITBUCKET_APP_PASSWORD", ["ATBB", (B62, 28), ("0123456789ABCDEF", 8)]),
    "anthropic_key": ("ANTHROPIC_API_KEY", ["sk-ant-api03-", (URLSAFE, 93), "AA"]),
    "openai_key": ("OPENAI_API_KEY", ["sk-proj-", (URLSAFE, 48)]),
    "sendgrid_key": ("SENDGRID_API_KEY", ["SG.", (URLSAFE, 22), ".", (URLSAFE, 43)]),
    "mailgun_key": ("MAILGUN_API_KEY", ["key-", (HEX, 32)]),
    "mailchimp_key": ("MAILCHIMP_KEY", [(HEX, 32), "-us", ("123456789", 1)]),
    "twilio_api_key": ("TWILIO_API_KEY", ["SK", (HEX, 32)]),
    "telegram_bot_token": ("TELEGRAM_BOT_TOKEN", [("123456789", 1), (string.digits, 9), ":AA", (URLSAFE, 33)]),
    "discord_webhook": ("DISCORD_WEBHOOK_URL", ["https://discord.com/api/webhooks/", (string.digits, 19), "/", (URLSAFE, 68)]),
    "discord_bot_token": ("DISCORD_TOKEN", ["M", (B62, 25), ".", (URLSAFE, 6), ".", (URLSAFE, 38)]),
    "slack_token": ("SLACK_BOT_TOKEN", ["xoxb-", (string.digits, 12), "-", (string.digits, 13), "-", (B62, 24)]),
    "slack_webhook": ("SLACK_WEBHOOK_URL", ["https://hooks.slack.com/services/T", (string.ascii_uppercase + string.digits, 10),
                                           "/B", (string.ascii_uppercase + string.digits, 10), "/", (B62, 24)]),
    "slack_app_token": ("SLACK_APP_TOKEN", ["xapp-1-A", (string.ascii_uppercase + string.digits, 10), "-", (string.digits, 13), "-", (HEX, 64)]),
    "teams_webhook": ("TEAMS_WEBHOOK", ["https://contoso.webhook.office.com/webhookb2/", (HEX, 8), "-", (HEX, 4), "-", (HEX, 4), "-",
                                       (HEX, 4), "-", (HEX, 12), "@", (HEX, 8), "/IncomingWebhook/", (HEX, 32), "/", (HEX, 8)]),
    "stripe_key": ("STRIPE_SECRET_KEY", ["sk_live_", (B62, 99)]),
    "stripe_webhook_secret": ("STRIPE_WEBHOOK_SECRET", ["whsec_", (B62, 32)]),
    "square_token": ("SQUARE_ACCESS_TOKEN", ["EAAA", (URLSAFE, 60)]),
    "braintree_token": ("BRAINTREE_ACCESS_TOKEN", ["access_token$production$", (string.ascii_lowercase + string.digits, 16), "$", (HEX, 32)]),
    "shopify_token": ("SHOPIFY_ACCESS_TOKEN", ["shpat_", (HEX, 32)]),
    "flutterwave_key": ("FLW_SECRET_KEY", ["FLWSECK_TEST-", ("abcdefgh" + string.digits, 32), "-X"]),
    "easypost_key": ("EASYPOST_API_KEY", ["EZAK", (B62, 54)]),
    "google_oauth_client_secret": ("GOOGLE_CLIENT_SECRET", ["GOCSPX-", (URLSAFE, 28)]),
    "google_oauth_token": ("GOOGLE_ACCESS_TOKEN", ["ya29.", (URLSAFE, 150)]),
    "azure_storage_key": ("AZURE_STORAGE_CONNECTION_STRING", ["DefaultEndpointsProtocol=https;AccountName=", (string.ascii_lowercase, 12),
                                                             ";AccountKey=", (B64, 86), "==;EndpointSuffix=core.windows.net"]),
    "azure_sas_key": ("SERVICEBUS_CONNECTION", ["Endpoint=sb://", (string.ascii_lowercase, 10), ".servicebus.windows.net/;SharedAccessKeyName="
                                               "RootManageSharedAccessKey;SharedAccessKey=", (B64, 43), "="]),
    "azure_ad_client_secret": ("AZURE_CLIENT_SECRET", [(B62, 3), ("123456789", 1), "Q~", (B62 + "_~.-", 34)]),
    "alibaba_access_key": ("ALIBABA_CLOUD_ACCESS_KEY_ID", ["LTAI", (B62, 20)]),
    "digitalocean_token": ("DIGITALOCEAN_TOKEN", ["dop_v1_", (HEX, 64)]),
    "heroku_key": ("HEROKU_API_KEY", ["HRKU-AA", (URLSAFE, 58)]),
    "cloudflare_origin_ca_key": ("CF_ORIGIN_CA_KEY", ["v1.0-", (HEX, 24), "-", (HEX, 146)]),
    "vault_token": ("VAULT_TOKEN", ["hvs.", (URLSAFE, 90)]),
    "terraform_cloud_token": ("TFE_TOKEN", [(B62, 14), ".atlasv1.", (URLSAFE, 67)]),
    "pulumi_token": ("PULUMI_ACCESS_TOKEN", ["pul-", (HEX, 40)]),
    "doppler_token": ("DOPPLER_TOKEN", ["dp.st.", (B62, 43)]),
    "databricks_token": ("DATABRICKS_TOKEN", ["dapi", (HEX, 32)]),
    "supabase_token": ("SUPABASE_ACCESS_TOKEN", ["sbp_", (HEX, 40)]),
    "planetscale_token": ("PLANETSCALE_TOKEN", ["pscale_tkn_", (URLSAFE, 43)]),
    "atlassian_token": ("JIRA_API_TOKEN", ["ATATT3xFfGF0", (URLSAFE, 172), "=", (string.ascii_uppercase + string.digits, 8)]),
    "linear_key": ("LINEAR_API_KEY", ["lin_api_", (B62, 40)]),
    "postman_key": ("POSTMAN_API_KEY", ["PMAK-", (HEX, 24), "-", (HEX, 34)]),
    "new_relic_key": ("NEW_RELIC_API_KEY", ["NRAK-", (string.ascii_uppercase + string.digits, 27)]),
    "grafana_token": ("GRAFANA_SERVICE_ACCOUNT_TOKEN", ["glsa_", (B62, 32), "_", (HEX, 8)]),
    "sentry_token": ("SENTRY_AUTH_TOKEN", ["sntryu_", (HEX, 64)]),
    "mapbox_secret_token": ("MAPBOX_SECRET_TOKEN", ["sk.eyJ1Ijoi", (B62, 40), ".", (URLSAFE, 22)]),
    "dropbox_token": ("DROPBOX_ACCESS_TOKEN", ["sl.", (URLSAFE, 135)]),
    "age_secret_key": ("SOPS_AGE_KEY", ["AGE-SECRET-KEY-1", ("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)]),
    "jwt": ("ID_TOKEN", ["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ", (URLSAFE, 60), ".", (URLSAFE, 43)]),
}
WORDS = ["Summer", "Winter", "Dragon", "Monkey", "Sunshine", "Princess", "Football", "Shadow", "Harley", "Ranger", "Banana",
         "Cookie", "Orange", "Purple", "Hockey", "Tigger", "Pepper", "Maggie", "Ginger", "Chelsea"]


class Planter:
    """Values of each kind from the documented formats, with a seeded RNG."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def make(self, parts: list) -> str:
        return "".join(p if isinstance(p, str) else "".join(self.rng.choice(p[0]) for _ in range(p[1])) for p in parts)

    def chosen_password(self) -> str:      # what people pick: Word + year or digits + symbol, or leetspeak
        w = self.rng.choice(WORDS)
        return self.rng.choice([f"{w}{self.rng.randrange(1990, 2026)}{self.rng.choice('!@#$%&*')}",
                                f"{w.replace('a', '@').replace('o', '0')}{self.rng.randrange(10, 99)}",
                                f"{self.rng.choice('!#$')}{w}{self.rng.randrange(100, 9999)}"])

    def value(self, kind: str) -> tuple[str, str]:
        """(name, value) of one secret of `kind`."""
        if kind == "chosen_password":
            return self.rng.choice(["DB_PASSWORD", "password", "smtp_pass", "ADMIN_PWD", "passphrase"]), self.chosen_password()
        if kind == "connection_string_password":
            pw = self.chosen_password()
            return "DATABASE_URL", self.rng.choice([
                f"Server=tcp:db{self.rng.randrange(99)}.example.net,1433;Database=app;User ID=app;Password={pw};Encrypt=True;",
                f"jdbc:postgresql://db.example.net:5432/app?user=app&password={pw}&ssl=true",
                f"Driver={{ODBC Driver 18 for SQL Server}};Server=db;Uid=app;Pwd={pw};"]) + "\0" + pw
        if kind == "url_password":
            pw = self.make([(B62, 8), "-", (B62, 6)])
            return "DATABASE_URL", f"postgres://app:{pw}@db.example.net:5432/main\0{pw}"
        name, parts = FORMATS[kind]
        return name, self.make(parts)


SYNTAXES = {   # how a name and a value are written, and the file they go in
    "python": (".py", lambda n, v: f'{n.upper()} = "{v}"\n'),
    "javascript": (".js", lambda n, v: f'const {n.lower()} = "{v}";\n'),
    "go": (".go", lambda n, v: f'\tcfg.Set("{n.lower()}", "{v}")\n'),
    "yaml": (".yaml", lambda n, v: f"  {n.lower()}: {v}\n"),
    "dotenv": (".env", lambda n, v: f"{n.upper()}={v}\n"),
    "json": (".json", lambda n, v: f'  "{n.lower()}": "{v}",\n'),
    "properties": (".properties", lambda n, v: f"app.{n.lower().replace('_', '.')}={v}\n"),
    "shell": (".sh", lambda n, v: f"export {n.upper()}='{v}'\n"),
    "dockerfile": ("Dockerfile", lambda n, v: f'ENV {n.upper()}="{v}"\n'),
    "toml": (".toml", lambda n, v: f'{n.lower()} = "{v}"\n'),
    "xml": (".xml", lambda n, v: f'  <add key="{n}" value="{v}" />\n'),
    "csharp": (".cs", lambda n, v: f'        var {n.lower()} = "{v}";\n'),
}
NEUTRAL = ["value", "setting_a", "cfg_item", "x1", "opt", "data"]    # names that say nothing


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


def planted_documents(p: Planter, hosts: list[str], per_kind: int) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """(file name, text, [(kind, syntax, value)]): each secret on a line of its syntax inside a real file."""
    kinds = list(FORMATS) + ["chosen_password", "connection_string_password", "url_password"]
    syntaxes = list(SYNTAXES)
    docs = []
    for k, kind in enumerate(kinds):
        for i in range(per_kind):
            syntax = syntaxes[(i + k) % len(syntaxes)]
            name, value = p.value(kind)
            value, _, secret = value.partition("\0")
            if i % 2 and kind not in ("chosen_password",):
                name = p.rng.choice(NEUTRAL)           # the format alone must give it away
            suffix, line = SYNTAXES[syntax]
            host = hosts[(k * per_kind + i) % len(hosts)]
            cut = host.index("\n", len(host) // 2) + 1
            text = host[:cut] + line(name, value) + host[cut:]
            docs.append((f"{kind}-{i}{suffix}" if not suffix[0].isupper() else f"{kind}-{i}/{suffix}", text,
                         [(kind, syntax, secret or value)]))
    return docs


def oracle(docs: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """detect-secrets on each (name, text), written to a temporary folder: {name: [(type, value)]}."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp, default_settings():
        paths = {}
        for i, (name, text) in enumerate(docs):
            path = Path(tmp) / f"{i:06d}" / Path(name).name
            path.parent.mkdir()
            path.write_text(text)
            paths[str(path)] = name
        collection = SecretsCollection()
        for path in paths:
            collection.scan_file(path)
        for filename, secret in collection:
            if secret.secret_value:
                found[paths[filename]].append((secret.type, secret.secret_value))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=100, help="clean code to scan for false positives and speed")
    parser.add_argument("--per-kind", type=int, default=24, help="planted secrets of each kind (2 per syntax)")
    parser.add_argument("--oracle-mb", type=float, default=10, help="clean code detect-secrets also scans (it runs ~0.5 MB/s)")
    args = parser.parse_args()
    clean = clean_files(args.mb)
    hosts = [text for path, text in clean if path.endswith((".py", ".c", ".js")) and 3000 < len(text) < 30000][::7]
    docs = planted_documents(Planter(0), hosts, args.per_kind)

    found, planted, by_syntax, missed = Counter(), Counter(), Counter(), []
    screened = screen([t for _, t, _ in docs])
    for (name, text, secrets), hit in zip(docs, screened):
        out = redact(text, hit).text
        for kind, syntax, value in secrets:
            planted[kind] += 1
            if value not in out:
                found[kind] += 1
            else:
                by_syntax[syntax] += 1
                missed.append((kind, syntax, value))
    total = sum(planted.values())
    print(f"planted: {total:,} secrets of {len(planted)} kinds in {len(SYNTAXES)} syntaxes, inside real .py/.c/.js files")
    weak = [k for k in planted if found[k] / planted[k] < 0.95]
    for kind in sorted(planted, key=lambda k: (found[k] / planted[k], k)):
        print(f"  {kind:<28} {found[kind]:>4} / {planted[kind]:<4} {found[kind] / planted[kind]:.3f}{'  < 0.95' if kind in weak else ''}")
    print(f"recall: {sum(found.values()) / total:.4f} (target ≥ 0.98; every kind ≥ 0.95: {'yes' if not weak else 'no: ' + ', '.join(weak)})")
    if missed:
        print(f"  missed by syntax: {dict(by_syntax)}; e.g. " + "; ".join(f"{k} in {s}: {v[:40]}" for k, s, v in missed[:5]))

    nbytes = sum(len(t.encode()) for _, t in clean)
    texts = [t for _, t in clean]
    start = time.process_time()
    spans = [find_secrets(t, hit) for t, hit in zip(texts, screen(texts))]
    seconds = time.process_time() - start
    false_positives, pii = [], Counter()
    for (path, text), found_spans in zip(clean, spans):
        for s, e, kind, placeholder in found_spans:
            if placeholder in ("<KEY>", "<PASSWORD>"):
                false_positives.append((path, kind, text[s:e]))
            else:
                pii[kind] += 1
    print(f"clean real code: {len(clean):,} files, {nbytes / 1e6:.1f} MB")
    print(f"  false positives (keys/passwords): {len(false_positives)} = {len(false_positives) / (nbytes / 1e7):.2f} per 10 MB (target ≤ 1)")
    for path, kind, value in false_positives:
        print(f"    {kind}: {value[:30]!r} in {path}")
    print(f"  real addresses redacted in clean code: {dict(pii)}")
    print(f"speed: {nbytes / seconds / 1e6:.1f} MB/s on one core, CPU time (target ≥ 20)")

    try:
        import detect_secrets  # noqa: F401
    except ImportError:
        print("oracle: detect-secrets is not installed (pip install -e '.[bench]')")
        return
    oracle_clean, total_mb = [], 0.0
    for path, text in clean:
        if total_mb > args.oracle_mb:
            break
        oracle_clean.append((path, text))
        total_mb += len(text.encode()) / 1e6
    start = time.perf_counter()
    theirs = oracle([(n, t) for n, t, _ in docs] + oracle_clean)
    oracle_seconds = time.perf_counter() - start
    ours = {name: redact(text).text for name, text in [(n, t) for n, t, _ in docs] + oracle_clean}
    entropy_only = {"Base64 High Entropy String", "Hex High Entropy String"}
    caught, they_found, they_missed, not_ours = 0, 0, 0, []
    planted_values = {name: {v for _, _, v in secrets} for name, _, secrets in docs}
    for name, findings in theirs.items():
        for kind, value in findings:
            if name in planted_values:
                they_found += any(value in v or v in value for v in planted_values[name])
            if kind in entropy_only and not (name in planted_values and value in planted_values[name]):
                continue                       # entropy hits in real code: hashes and test data, not secrets
            if value in ours[name]:
                not_ours.append((kind, value, name))
            else:
                caught += 1
    they_missed = total - they_found
    considered = caught + len(not_ours)
    print(f"\noracle detect-secrets ({oracle_seconds:.0f}s for {len(docs):,} planted files + {total_mb:.1f} MB of clean code): "
          f"it found {they_found:,} of the {total:,} planted secrets ({they_missed:,} not)")
    print(f"  of its {considered:,} findings (entropy-only ones in the real code left out) we redact {caught:,} "
          f"({caught / max(considered, 1):.3f}); what it found that we leave:")
    for kind, value, name in sorted(not_ours, key=lambda x: x[0])[:40]:
        print(f"    {kind}: {value[:40]!r} in {Path(name).name}")


if __name__ == "__main__":
    main()
