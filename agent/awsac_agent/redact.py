"""Credential redactor: AWS access key ids, secret keys and session tokens never leave the agent.

Every log line the agent prints or uploads, and every job log before upload, passes ``redact``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Union

REDACTED = "[REDACTED]"

# Access key ids: AKIA (long-term) and ASIA (temporary), plus the other IAM unique-id prefixes.
_ACCESS_KEY_RE = re.compile(
    r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Z0-9])"
)

_B64 = r"A-Za-z0-9/+="
# A value after a key-ish name: secret keys and tokens, as env lines, config files, JSON or headers.
_NAMED_RE = re.compile(
    r"(?i)((?:aws_?)?(?:secret_?access_?key|secret_?key|session_?token|security_?token|"
    r"x-amz-security-token|secretaccesskey|sessiontoken|\btoken)"
    r"[\"']?\s*(?:[:=]|=>)\s*[\"']?)([" + _B64 + r"]{16,})"
)
# A standalone 40-character secret key: base64 alphabet with upper, lower and digit-or-symbol
# (a 40-hex git hash has no upper case and is left alone).
_SECRET_RE = re.compile(r"(?<![" + _B64 + r"])([A-Za-z0-9/+]{40})(?![" + _B64 + r"])")
# A standalone session token: STS tokens start with these prefixes, or are very long base64 runs.
_TOKEN_RE = re.compile(
    r"(?<![" + _B64 + r"])(?:(?:IQoJ|FwoG|FQoG|AQoD)[" + _B64 + r"]{40,}|[A-Za-z0-9/+]{160,}={0,2})"
)


def _looks_like_secret(s: str) -> bool:
    return (
        any(c.isupper() for c in s)
        and any(c.islower() for c in s)
        and any(c.isdigit() or c in "/+" for c in s)
    )


def redact(text: str) -> str:
    """``text`` with every credential-looking value replaced by [REDACTED]."""
    if not text:
        return text
    text = _ACCESS_KEY_RE.sub(REDACTED, text)
    text = _NAMED_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _TOKEN_RE.sub(REDACTED, text)
    return _SECRET_RE.sub(
        lambda m: REDACTED if _looks_like_secret(m.group(1)) else m.group(1), text
    )


def redact_file(src: Union[str, Path], dest: Union[str, Path]) -> int:
    """Copy ``src`` to ``dest`` redacted line by line; returns the number of lines changed."""
    changed = 0
    with open(src, encoding="utf-8", errors="replace") as fin:
        with open(dest, "w", encoding="utf-8") as fout:
            for line in fin:
                clean = redact(line)
                if clean != line:
                    changed += 1
                fout.write(clean)
    return changed
