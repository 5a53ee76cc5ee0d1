"""A repository's license (SPDX id, lower case) from the text of its LICENSE / COPYING files.

Each license is recognised by phrases from its own text, checked from the most specific to the
most general (LGPL before GPL, AGPL before both; BSD-3 by its non-endorsement clause). A file that
matches nothing gives `None` (unknown), which the license policy treats as configured.
"""
from __future__ import annotations

import re

LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|unlicense)([-_.][\w.-]*)?$", re.I)
PERMISSIVE = ("mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "isc", "unlicense", "cc0-1.0", "zlib",
              "bsl-1.0", "psf-2.0", "mpl-2.0", "0bsd")

# (spdx, phrases that must all appear). Titles (GNU, Mozilla, Apache, Eclipse) are looked for in the head
# of the file only, since these licenses name each other in their bodies.
_TITLE_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("agpl-3.0", ("gnu affero general public license",)),
    ("lgpl-3.0", ("gnu lesser general public license", "version 3")),
    ("lgpl-2.1", ("gnu lesser general public license", "version 2.1")),
    ("lgpl-2.0", ("gnu library general public license",)),
    ("gpl-3.0", ("gnu general public license", "version 3")),
    ("gpl-2.0", ("gnu general public license", "version 2")),
    ("apache-2.0", ("apache license", "version 2.0")),
    ("apache-2.0", ("apache 2.0",)),
    ("mpl-2.0", ("mozilla public license", "2.0")),
    ("mpl-1.1", ("mozilla public license", "1.1")),
    ("epl-2.0", ("eclipse public license", "2.0")),
    ("epl-1.0", ("eclipse public license",)),
]
_BODY_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("unlicense", ("this is free and unencumbered software released into the public domain",)),
    ("cc0-1.0", ("cc0 1.0 universal",)),
    ("bsl-1.0", ("boost software license",)),
    ("psf-2.0", ("python software foundation license",)),
    ("isc", ("distribute this software for any purpose with or without fee",)),
    ("bsd-3-clause", ("redistribution and use in source and binary forms", "neither the name")),
    ("bsd-3-clause", ("redistribution and use in source and binary forms", "names of its contributors may")),
    ("bsd-2-clause", ("redistribution and use in source and binary forms",)),
    ("mit", ("permission is hereby granted, free of charge, to any person",)),
    ("zlib", ("altered source versions must be plainly marked",)),
    ("artistic-2.0", ("artistic license 2.0",)),
]


def _normalise(text: str) -> str:
    return re.sub(r"[\s*#/]+", " ", text.lower())


def detect_license(text: str) -> str | None:
    """The SPDX id (lower case) of a license text, or None when it is not recognised."""
    norm = _normalise(text[:20_000])
    head = norm[:400]
    for rules, where in ((_TITLE_RULES, head), (_BODY_RULES, norm)):
        for spdx, phrases in rules:
            if all(p in where for p in phrases):
                return spdx
    return None


def is_license_file(name: str) -> bool:
    return bool(LICENSE_FILE.match(name))


def repository_license(files: dict[str, str]) -> str | None:
    """The license of a repository from its top-level license files ({name: text}), first by name."""
    for name in sorted(files):
        spdx = detect_license(files[name])
        if spdx:
            return spdx
    return None


class LicensePolicy:
    """Which licenses a record may carry: `keep` (None: any), and what to do with an unknown one."""

    def __init__(self, keep: list[str] | None, unknown: str = "keep"):
        self.keep = None if keep is None or "*" in keep else frozenset(k.lower() for k in keep)
        self.unknown = unknown

    def reason(self, license: str | None) -> str | None:
        if not license:
            return None if self.unknown == "keep" else "license_unknown"
        if self.keep is None or license.lower() in self.keep:
            return None
        return f"license_not_allowed:{license.lower()}"
