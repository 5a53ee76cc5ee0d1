"""The clean stage (before dedup): redact secrets and personal data, drop files that are mostly
secrets (a key file), and drop files that contain a benchmark's prompt or solution."""
from __future__ import annotations

import pyarrow as pa

from codecorpus.stages.decontaminate import Decontaminator
from codecorpus.stages.records import mark
from codecorpus.stages.secrets import redact, screen


def clean_batch(batch: pa.Table, redact_secrets: bool = True, max_secret_fraction: float = 0.5,
                decontaminator: Decontaminator | None = None) -> pa.Table:
    texts, counts, reasons = [], [], []
    originals = batch.column("text").to_pylist()
    screened = screen([t or "" for t in originals]) if redact_secrets else [False] * len(originals)
    for text, has_token in zip(originals, screened):
        reason = None
        if decontaminator is not None and len(decontaminator):
            item = decontaminator.match(text)
            reason = f"benchmark:{item}" if item else None
        found = None
        if redact_secrets and reason is None:
            found = redact(text, has_token)
            if found.redacted_chars and found.redacted_chars >= max_secret_fraction * len(text):
                reason = "mostly_secrets"
            else:
                text = found.text
        texts.append(None if reason == "mostly_secrets" else text)
        counts.append(sorted(found.counts.items()) if found and found.counts else None)
        reasons.append(reason)
    batch = batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(texts, pa.large_string()))
    batch = batch.set_column(batch.schema.get_field_index("redactions"), "redactions",
                             pa.array(counts, pa.map_(pa.string(), pa.int32())))
    return mark(batch, reasons)
