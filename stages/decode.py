"""Bytes to text: UTF-8 (a BOM dropped), else an encoding that charset-normalizer detects with
confidence among those common in source code, else the file is quarantined as `undecodable`."""
from __future__ import annotations

import codecs

import charset_normalizer

SOURCE_ENCODINGS = ["cp1252", "cp1251", "koi8_r", "cp932", "euc_jp", "gb18030", "big5", "cp949"]
MAX_CHAOS = 0.1


def decode_text(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason)."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), None
        except UnicodeDecodeError:
            return None, "undecodable"
    best = charset_normalizer.from_bytes(data, cp_isolation=SOURCE_ENCODINGS, threshold=MAX_CHAOS).best()
    return (str(best), None) if best is not None else (None, "undecodable")
