"""Find and redact secrets and personal data in source files (BigCode's PII step, at corpus speed).

What is found, and its placeholder:
  <KEY>         keys and tokens: AWS access key ids and secrets, GCP API keys and service-account key
                ids, Slack tokens and webhooks, JWTs, PEM private key blocks, and the 55 provider
                formats of stages.secret_formats (GitHub, GitLab, npm, PyPI, OpenAI, Stripe, Azure
                connection strings, …)
  <PASSWORD>    the password of a `scheme://user:password@host` URL; `Password=`/`Pwd=` in connection
                strings and `&password=` in JDBC/URL queries; values assigned to names like
                secret/token/api_key that look random (Shannon entropy ≥ 3 bits per character), and
                any value assigned to a password-like name (people choose `Summer2024!`) that is not a
                reference (`${…}`, `$DB_PASS`, `os.environ[…]`), a placeholder, code or a sample
  <EMAIL>       e-mail addresses
  <IP_ADDRESS>  public IPv4/IPv6 addresses (private, loopback, link-local and documentation ranges
                kept; a dotted quad after "version"/"v" kept)
Each pattern is a regular expression anchored on something distinctive. The provider formats are
screened for a whole batch at once (`screen`: one RE2 pass); the rest is first checked with cheap
substring tests, so that most files cost one pass of `in` per kind.
"""
from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from codecorpus.stages import secret_formats

KEY, PASSWORD, EMAIL, IP = "<KEY>", "<PASSWORD>", "<EMAIL>", "<IP_ADDRESS>"

# (kind, trigger strings, pattern, group to replace): the triggers are found with str.find at memory
# speed (a regex when it starts with a literal; "aws" in the lower-cased text); the pattern then runs
# on the lines around each trigger only.
_TOKEN_PATTERNS = [
    ("aws_access_key_id", re.compile("A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)"), r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b", 0),
    ("aws_secret_access_key", ("aws",), r"(?i:aws.{0,24}?(?:secret|private).{0,24}?['\"=:]\s*['\"]?)([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", 1),
    ("gcp_api_key", ("AIza",), r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])", 0),
    ("gcp_private_key_id", ("private_key_id",), r"(\"private_key_id\"\s*:\s*\")([0-9a-f]{40})(\")", 2),
    ("slack_token", ("xox",), r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", 0),
    ("slack_webhook", ("hooks.slack.com",), r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+", 0),
    ("jwt", ("eyJ",), r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", 0),
]
_TOKENS = [(kind, trigger, re.compile(rx), group) for kind, trigger, rx, group in _TOKEN_PATTERNS]
_SCREEN = re.compile(secret_formats.SCREEN)     # the provider screen for one text (a batch uses RE2: screen())
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s\\]|\\n|[\w-]+: [^\n]*\n)*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")

_SECRET_WORDS = r"passw(?:or)?d|passwd|pwd|(?<![a-z])pass(?:phrase)?|secret|token|api[_\-]?key|apikey|access[_\-]?key|auth[_\-]?key|private[_\-]?key|credentials?"
_SECRET_TRIGGER = ("pass", "pwd", "secret", "token", "api", "access", "auth", "private", "credential")
# The name must end with the secret word (TOKEN_PREFIX, SecretId, token_type are not secrets), and
# pagination/idempotency tokens of web APIs are not secrets either.
_SECRET_NAME = rf"[\w.\-]*?(?<!next)(?<!continuation)(?<!page)(?<!request)(?<!change)(?<!purchase)(?<!idempotency)(?<!csrf)(?:{_SECRET_WORDS})"
_ASSIGN_QUOTED = re.compile(rf"(?i)\b({_SECRET_NAME})(['\"]?\s*(?::=|=>|[:=])\s*[rbuf]?)(['\"])([^'\"\s]{{8,200}})\3")
# NAME=value lines of shells, `.env` files and Dockerfiles (`ENV NAME=value`, `ENV NAME value`)
_ASSIGN_BARE = re.compile(rf"(?i)^(\s*(?:(?:export|ENV)\s+)?{_SECRET_NAME}\s*[:=]\s*|\s*ENV\s+{_SECRET_NAME}[ \t]+)"
                          rf"([^\s'\"]\S{{7,199}}?)[,;]?(?:[ \t]+#.*)?[ \t]*$")
# Names of the password family take any value that is not a placeholder, a reference or code: people
# choose `Summer2024!`, which no entropy test would flag.
_PASSWORD_NAME = re.compile(r"(?i)(?:passw(?:or)?d|passwd|pwd|(?<![a-z])pass(?:phrase)?)$")
_REFERENCE = re.compile(r"^(?-i:\$[A-Z_][A-Z0-9_]*|\$[a-z_][a-z0-9_]*)$|^(?:%\(|\{\{|<%|@\{)|\$\{|\$\(|\benv\b|environ|getenv|process\.|settings\.|config\.|\(|\)|^(?:none|null|nil|true|false|undefined)$", re.I)
_WEAK_SAMPLE = re.compile(r"(?i)test|fake|dummy|sample|example|xxx|pass|secret|changeme|admin|1234|qwerty|\*{3}|<|>")
# A chosen password may start with `$`, `#` or `!`; these are placeholders only as a whole (`<…>`, `***`, `...`).
_CHOSEN_PLACEHOLDER = re.compile(r"^(?:<.*>|\*+|\.+|x+|\{\w*\})$|\.\.\.|(?i:changeme|example|your[_\-]|dummy|placeholder|redacted)")
# A name and its value as two strings of a call or element: cfg.Set("db_password", "…"), <add key="…" value="…"/>
_KEY_VALUE_PAIR = re.compile(rf"(?i)[\"']({_SECRET_NAME})[\"']\s*(?:,|\bvalue\s*=|=>)\s*[\"']([^\"'\s]{{6,200}})[\"']")
# key=value blobs: ADO.NET/ODBC connection strings (`…;Password=…;`) and JDBC/URL query parameters
_CONNECTION_PASSWORD = re.compile(r"(?i)(?:(?<=[;\"'\s])|^|(?<=[?&]))(?:password|pwd|passwd)\s*=\s*([^;'\"\s&<>]+(?:&(?![A-Za-z_]\w*=)[^;'\"\s&<>]*)*)(?=[;&'\"\s]|$)")
# scheme://[user]:password@host — the user may be empty (redis://:pw@host), the host a name, an
# address or a bracketed IPv6 address
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.\-]{1,20}://[^\s:/@'\",]{0,64}:)([^\s@/'\",:]{3,128})(@(?:\[[0-9A-Fa-f:.]+\]|[\w.\-]+))")
_URL_USERINFO_BEFORE = re.compile(r"[a-z][a-z0-9+.\-]{1,20}://[^\s/@'\",]{0,64}:?$")
_EMAIL_TRIGGER = re.compile(r"@[A-Za-z0-9\-]+\.[A-Za-z]")
_EMAIL = re.compile(r"\b[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@(?:[A-Za-z0-9\-]{1,63}\.)+[A-Za-z]{2,24}\b")
_IPV4_TRIGGER = re.compile(r"\.\d{1,3}\.\d{1,3}\.")
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]*\d)")
_IPV6_TRIGGER = re.compile(r":(?::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}|:)(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_VERSION_CONTEXT = re.compile(r"(?i)(?<![a-z])(?:version|ver|release|rev|v)[\W_]{0,6}$")
_PLACEHOLDER = re.compile(r"^(?:\$|%|\{|<|#|\*{3}|x{4,}|\.{3})|\.\.\.|%[0-9A-F]{2}|(?i:changeme|example|your[_\-]|dummy|placeholder|redacted|xxxx)"
                          r"|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"   # a UUID is an id, not a secret
                          r"|^[0-9a-fA-F]{1,31}$|^arn:")                                      # short hex: a resource id
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_.]*|[a-z]+(?:[-_.][a-z]+)*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|.*[()\[\]{}'\"].*")  # names, code
_NAMES_A_SECRET = re.compile(rf"(?i){_SECRET_WORDS}|credential")   # PKCS7PrivateKeyTypes, "Allow-Credentials": names
ENTROPY_BITS = 3.0


def entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def _looks_secret(value: str) -> bool:
    return (len(value) >= 8 and not _PLACEHOLDER.search(value) and entropy(value) >= ENTROPY_BITS
            and any(ch.isdigit() for ch in value) + any(ch.isalpha() for ch in value) + any(not ch.isalnum() for ch in value) >= 2
            and not _IDENTIFIER.fullmatch(value) and not _NAMES_A_SECRET.search(value))


def _chosen_password(name: str, value: str) -> bool:
    """A value assigned to a password-like name that is a real password, whatever its entropy."""
    return (_PASSWORD_NAME.search(name.strip("'\" ")) is not None and 6 <= len(value) <= 128
            and not _CHOSEN_PLACEHOLDER.search(value) and not _REFERENCE.search(value) and not _WEAK_SAMPLE.search(value)
            and not _IDENTIFIER.fullmatch(value) and any(c.isalpha() for c in value) and any(not c.isalpha() for c in value))


def _letters_password(name: str, value: str) -> bool:
    """A password of letters alone in a bare NAME=value line (`DB_PASSWORD=QnLqFWfDNJGhja` in a `.env`
    file): both cases, no word of a sample or placeholder, as varied as a random string."""
    return (_PASSWORD_NAME.search(name) is not None and 8 <= len(value) <= 128 and value.isalpha() and value.isascii()
            and not value.islower() and not value.isupper() and entropy(value) >= ENTROPY_BITS
            and not _WEAK_SAMPLE.search(value) and not _CHOSEN_PLACEHOLDER.search(value))


def _bare_secret(match: re.Match) -> bool:
    name = re.split(r"[=:\s]", re.sub(r"(?i)^(?:export|env)\s+", "", match.group(1).strip()))[0]
    value = match.group(2)
    return _looks_secret(value) or _chosen_password(name, value) or _letters_password(name, value)


def _connection_password(line: str, match: re.Match) -> bool:
    """`Password=` inside a connection string (`;` separated) or a URL/JDBC query (`?`/`&`)."""
    value = match.group(1)
    if not 4 <= len(value) <= 128:
        return False
    blob = ";" in line or "?" in line[:match.start()] or "&" in line[:match.start()]
    return blob and not _CHOSEN_PLACEHOLDER.search(value) and not _REFERENCE.search(value) and not _WEAK_SAMPLE.search(value)


def _url_password(line: str, match: re.Match) -> bool:
    """The password of a URL's user information is one by its place, whatever it looks like, unless it
    is a placeholder, a reference (`${DB_PASS}`, `%(password)s`), a sample value (`pass`, `secret`) or
    digits alone (`host:8080@…` is a port)."""
    value = match.group(2)
    return not value.isdigit() and (_looks_secret(value) or (
        not _CHOSEN_PLACEHOLDER.search(value) and not _REFERENCE.search(value) and not _WEAK_SAMPLE.search(value)))


def _email(line: str, match: re.Match) -> bool:
    """An address, not the `password@host` or `user@host` of a URL (its host is not an e-mail domain)."""
    return _URL_USERINFO_BEFORE.search(line, 0, match.start()) is None


def screen(texts: list[str]) -> list[bool]:
    """Which texts hold any provider token prefix: one RE2 pass over the whole batch (≈ 700 MB/s)."""
    if not texts:
        return []
    hits = pc.match_substring_regex(pa.array(texts, pa.large_string()), secret_formats.SCREEN)
    return [bool(h) for h in hits.to_pylist()]


def _public_ip(text: str, match: re.Match) -> bool:
    if _VERSION_CONTEXT.search(text[max(0, match.start() - 16): match.start()]):
        return False
    try:
        return ipaddress.ip_address(match.group(0)).is_global
    except ValueError:
        return False


@dataclass
class Redaction:
    text: str
    counts: Counter
    redacted_chars: int


def _hits(trigger: re.Pattern | tuple[str, ...], haystack: str) -> list[int]:
    if isinstance(trigger, re.Pattern):
        return [m.start() for m in trigger.finditer(haystack)]
    hits = []
    for needle in trigger:
        pos = haystack.find(needle)
        while pos >= 0:
            hits.append(pos)
            pos = haystack.find(needle, pos + 1)
    return sorted(hits)


def _lines(text: str, trigger: re.Pattern | tuple[str, ...], haystack: str | None = None) -> list[tuple[int, int]]:
    """(start, end) of each line holding a trigger (a regex, or literal strings), in order, once each."""
    spans: list[tuple[int, int]] = []
    for pos in _hits(trigger, haystack if haystack is not None else text):
        if spans and pos < spans[-1][1]:
            continue
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        spans.append((start, len(text) if end < 0 else end))
    return spans


def find_secrets(text: str, screened: bool | None = None) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, placeholder) of everything to redact, not overlapping, in order. `screened`:
    whether `screen()` found a provider prefix in the text (None: look here, more slowly)."""
    found: list[tuple[int, int, str, str]] = []

    def scan(trigger, pattern: re.Pattern, group: int, kind: str, placeholder: str, keep=None, haystack=None, lines=None):
        for start, end in lines if lines is not None else _lines(text, trigger, haystack):
            line = text[start:end]
            for m in pattern.finditer(line):
                if keep is None or keep(line, m):
                    found.append((start + m.start(group), start + m.end(group), kind, placeholder))

    if "PRIVATE KEY-----" in text:
        found += [(m.start(), m.end(), "private_key", KEY) for m in _PRIVATE_KEY.finditer(text)]
    lower = text.lower()
    haystack = lower if len(lower) == len(text) else None      # lower() kept the offsets (it nearly always does)
    for kind, trigger, pattern, group in _TOKENS:
        case_free = kind == "aws_secret_access_key"
        scan(trigger if haystack is not None or not case_free else re.compile("aws", re.I), pattern, group, kind, KEY,
             lambda s, m: "EXAMPLE" not in m.group(0), haystack if case_free else None)   # AWS's documented fakes
    if screened is None:
        screened = _SCREEN.search(text) is not None
    if screened:
        for kind, prefixes, pattern, group in secret_formats.COMPILED:
            if not prefixes:
                found += [(m.start(group), m.end(group), kind, KEY) for m in pattern.finditer(text)]
            elif any(p in text for p in prefixes):
                scan(prefixes, pattern, group, kind, KEY)
    if "://" in text:
        scan(("://",), _URL_PASSWORD, 2, "url_password", PASSWORD, _url_password)
    trigger = _SECRET_TRIGGER if haystack is not None else re.compile("|".join(_SECRET_TRIGGER), re.I)
    named = _lines(text, trigger, haystack)      # the lines that name a secret, found once for the three forms
    scan(None, _ASSIGN_QUOTED, 4, "assigned_secret", PASSWORD,
         lambda s, m: _looks_secret(m.group(4)) or _chosen_password(m.group(1), m.group(4)), lines=named)
    scan(None, _ASSIGN_BARE, 2, "assigned_secret", PASSWORD, lambda s, m: _bare_secret(m), lines=named)
    scan(None, _KEY_VALUE_PAIR, 2, "assigned_secret", PASSWORD,
         lambda s, m: _looks_secret(m.group(2)) or _chosen_password(m.group(1), m.group(2)), lines=named)
    if "pw" in lower or "passw" in lower:
        scan(("password", "pwd", "passwd") if haystack is not None else re.compile("password|pwd|passwd", re.I),
             _CONNECTION_PASSWORD, 1, "connection_string_password", PASSWORD, _connection_password, haystack)
    scan(_EMAIL_TRIGGER, _EMAIL, 0, "email", EMAIL, _email)
    scan(_IPV4_TRIGGER, _IPV4, 0, "ip_address", IP, _public_ip)
    scan(_IPV6_TRIGGER, _IPV6, 0, "ip_address", IP, lambda s, m: any(c.isdigit() for c in m.group(0)) and _public_ip(s, m))
    found.sort(key=lambda f: (f[0], -f[1]))
    kept: list[tuple[int, int, str, str]] = []
    for f in found:                                   # the first (then longest) of overlapping finds wins
        if not kept or f[0] >= kept[-1][1]:
            kept.append(f)
    return kept


def redact(text: str, screened: bool | None = None) -> Redaction:
    """The text with secrets and personal data replaced by placeholders, and what was replaced."""
    spans = find_secrets(text, screened)
    if not spans:
        return Redaction(text, Counter(), 0)
    out, last = [], 0
    for start, end, _, placeholder in spans:
        out += [text[last:start], placeholder]
        last = end
    out.append(text[last:])
    return Redaction("".join(out), Counter(kind for _, _, kind, _ in spans), sum(e - s for s, e, _, _ in spans))
