"""Credential redactor: the one table of secret shapes that must never leave the agent.

Every log line the agent prints or uploads, and every job log before upload, passes ``redact``
(``redact_stream`` for a whole log: chunks of lines, bounded memory, time linear in the data).
Each row of ``RULES`` is one shape with a fake example; tests/agent/test_redact.py redacts each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, FrozenSet, List, Optional, Tuple, Union

REDACTED = "[REDACTED]"
_REDACTED_B = REDACTED.encode()

_B64 = r"A-Za-z0-9/+="
# A value after a name: quoted, or up to whitespace / a quote / a separator.
_VALUE = r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;&]+)"
B64_RUN = "<base64 run>"  # anchor: where a run of 40 or more base64 characters starts


def _mixed(s: str) -> bool:
    """Upper, lower and a digit or symbol: a 40-hex git hash has no upper case and is kept."""
    return (
        any(c.isupper() for c in s)
        and any(c.islower() for c in s)
        and any(c.isdigit() or c in "/+" for c in s)
    )


def _a_value(v: str) -> bool:
    """An assigned value that is a secret: not empty, not already redacted, not a $reference."""
    v = v.strip("\"'")
    return v not in ("", REDACTED) and not v.startswith("$")


@dataclass(frozen=True)
class Rule:
    """One secret shape. The regex is tried only where one of ``anchors`` starts (a literal, or
    ``B64_RUN``: where a run of 40 or more base64 characters starts), so a big log is scanned at
    the speed of ``bytes.find``; ``group`` is the regex group holding the secret (0: the whole
    match); with ``fold`` the pattern (written in lower case) runs on the lower-cased text;
    ``before`` lists characters that may not precede the match."""

    name: str
    source: str
    example: str  # a line with a fake secret of this shape
    secret: str  # the part of ``example`` that must disappear
    anchors: Tuple[str, ...] = ()
    group: int = 0
    fold: bool = False
    before: str = ""
    check: Optional[Callable[[str], bool]] = None
    pattern: "re.Pattern[bytes]" = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", re.compile(self.source.encode()))


# The fake secrets of the examples, each joined from parts at run time: no whole secret appears
# in this file nor in its bytecode (the compiler folds "a" + "b" into one constant), and both
# travel in every session archive, inside the worker zipapp.
def _joined(*parts: str) -> str:
    return "".join(parts)


_AWS_SECRET = _joined("wJalrXUtnFEMI", "/K7MDENG/bPxRfiCYEXAMPLEKEY")
_AKID = _joined("AKIA", "IOSFODNN7EXAMPLE")
_PEM_BODY = _joined("MIIEow", "IBAAKCAQEA7x")
_PW = _joined("hun", "ter2")
_BEARER = _joined("abc123", "def456ghi789")
_URL_PW = _joined("s3cr", "etpw")
_SLACK = _joined("xoxb-", "1234567890-0987654321-AbCdEfGhIjKlMnOp")
_SK = _joined("sk-", "proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34")
_GOOGLE = _joined("AIza", "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")
_GH = _joined("ghp_", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8")
_JWT = _joined(
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.",
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
)
_STS = _joined("IQoJb3JpZ2luX2Vj", "EHoaCXVzLWVhc3QtMSJHMEUCIQD5exampletoken1234")
_ACCESS_PREFIXES = ("AKIA", "ASIA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA")

# The table: every shape of secret the agent removes before anything leaves the instance.
RULES: Tuple[Rule, ...] = (
    Rule(
        "pem private key (one line; multi-line blocks are dropped by redact_stream)",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
        '{"key": "-----BEGIN RSA PRIVATE KEY-----\\n'
        + _PEM_BODY
        + '\\n-----END RSA PRIVATE KEY-----"}',
        _PEM_BODY,
        anchors=("-----BEGIN ",),
    ),
    Rule(
        "assignment of a *_PASSWORD, *_TOKEN, *_SECRET or *_KEY",
        r"((?:passw(?:or)?d|passphrase|token|secret|api_?key|access_?key|private_?key|"
        r"credentials?)[\"']?[ \t]*(?:=>|=|:)[ \t]*)" + _VALUE,
        f"MY_DB_PASSWORD={_PW}",
        _PW,
        anchors=(
            "passw",
            "passphrase",
            "token",
            "secret",
            "api_key",
            "apikey",
            "access_key",
            "accesskey",
            "private_key",
            "privatekey",
            "credential",
        ),
        group=2,
        fold=True,
        check=_a_value,
    ),
    Rule(
        "authorization header",
        r"((?:authorization|proxy-authorization)[ \t]*[:=][ \t]*(?:bearer|token|basic)[ \t]+)"
        r"([a-z0-9._~+/=-]+)",
        f"Authorization: Bearer {_BEARER}",
        _BEARER,
        anchors=("authorization", "proxy-authorization"),
        group=2,
        fold=True,
    ),
    Rule(
        "password in a URL",
        r"(://[^\s:/@]+:)([^\s/@]+)@",
        f"postgres://atlas:{_URL_PW}@db.example.org/events",
        _URL_PW,
        anchors=("://",),
        group=2,
    ),
    Rule(
        "github token",
        r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
        f"cloning with {_GH}",
        _GH,
        anchors=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        before="A-Za-z0-9_",
    ),
    Rule(
        "slack token or webhook",
        r"xox[abposr]-[A-Za-z0-9-]{10,}|"
        r"hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+",
        f"slack {_SLACK}",
        _SLACK,
        anchors=("xox", "hooks.slack.com/services/"),
    ),
    Rule(
        "openai-style sk- key",
        r"sk-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_]{20,}",
        f"key {_SK}",
        _SK,
        anchors=("sk-",),
        before="A-Za-z0-9_-",
    ),
    Rule(
        "google api key",
        r"AIza[0-9A-Za-z_-]{35}",
        f"maps {_GOOGLE}",
        _GOOGLE,
        anchors=("AIza",),
        before="A-Za-z0-9_-",
    ),
    Rule(
        "json web token",
        r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}",
        f"cookie {_JWT}",
        _JWT,
        anchors=("eyJ",),
        before="A-Za-z0-9_-",
    ),
    Rule(
        "aws access key id",
        r"(?:" + "|".join(_ACCESS_PREFIXES) + r")[A-Z0-9]{16}(?![A-Z0-9])",
        f"AWS_ACCESS_KEY_ID={_AKID}",
        _AKID,
        anchors=_ACCESS_PREFIXES,
        before="A-Z0-9",
    ),
    Rule(
        "aws session token",
        r"(?:(?:IQoJ|FwoG|FQoG|AQoD)[" + _B64 + r"]{36,}|"
        r"[A-Za-z0-9/+]{160,}={0,2})",
        f"token {_STS}",
        _STS,
        anchors=(B64_RUN,),
    ),
    Rule(
        "aws secret access key",
        r"[A-Za-z0-9/+]{40}(?![" + _B64 + r"])",
        f"the key {_AWS_SECRET} alone",
        _AWS_SECRET,
        anchors=(B64_RUN,),
        check=_mixed,
    ),
)

_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"
_B64_MAP = bytes(ord("a") if c in _B64_CHARS else ord(" ") for c in range(256))
_RUN_40 = b"a" * 40


def _charset(spec: str) -> FrozenSet[int]:
    """The byte values of a regex character class body such as ``A-Z0-9``."""
    return frozenset(m[0] for m in re.findall(rb"[" + spec.encode() + rb"]", bytes(range(128))))


_ANCHORS = {r.name: tuple(a.encode() for a in r.anchors if a != B64_RUN) for r in RULES}
_BEFORE = {r.name: _charset(r.before) if r.before else frozenset() for r in RULES}


def _literal_starts(hay: bytes, anchors: Tuple[bytes, ...]) -> List[int]:
    out: List[int] = []
    for a in anchors:
        i = hay.find(a)
        while i >= 0:
            out.append(i)
            i = hay.find(a, i + 1)
    return out


def _run_starts(chunk: bytes) -> List[int]:
    """Where each run of 40 or more base64 characters starts."""
    mapped = chunk.translate(_B64_MAP)
    out: List[int] = []
    i = mapped.find(_RUN_40)
    while i >= 0:
        j = i
        while j > 0 and mapped[j - 1] == 97:  # a run found in its middle: back to its start
            j -= 1
        out.append(j)
        end = mapped.find(b" ", i)
        if end < 0:
            break
        i = mapped.find(_RUN_40, end)
    return out


def redact_bytes(chunk: bytes) -> Tuple[bytes, int]:
    """(``chunk`` with every secret replaced by [REDACTED], number of secrets replaced)."""
    if not chunk:
        return chunk, 0
    lower: Optional[bytes] = None
    runs: Optional[List[int]] = None
    spans: List[Tuple[int, int]] = []
    for rule in RULES:
        if rule.fold:
            lower = chunk.lower() if lower is None else lower  # ASCII only: same offsets
            hay = lower
        else:
            hay = chunk
        starts = _literal_starts(hay, _ANCHORS[rule.name])
        if B64_RUN in rule.anchors:
            runs = _run_starts(chunk) if runs is None else runs
            starts += runs
        before = _BEFORE[rule.name]
        last = -1
        for pos in sorted(starts):
            if pos < last or (before and pos > 0 and chunk[pos - 1] in before):
                continue
            m = rule.pattern.match(hay, pos)
            if m is None:
                continue
            start, end = m.span(rule.group)
            last = m.end()
            if start >= end:
                continue
            if rule.check is not None and not rule.check(chunk[start:end].decode("latin-1")):
                continue
            spans.append((start, end))
    if not spans:
        return chunk, 0
    spans.sort()
    out: List[bytes] = []
    pos = 0
    count = 0
    for start, end in spans:
        if start < pos:  # overlaps the previous secret: extend it
            pos = max(pos, end)
            continue
        out.append(chunk[pos:start])
        out.append(_REDACTED_B)
        pos = end
        count += 1
    out.append(chunk[pos:])
    return b"".join(out), count


def redact(text: str) -> str:
    """``text`` with every credential-looking value replaced by [REDACTED]."""
    if not text:
        return text
    clean, n = redact_bytes(text.encode("utf-8", "surrogateescape"))
    return clean.decode("utf-8", "surrogateescape") if n else text


CHUNK = 1 << 20  # bytes redacted at once (whole lines)
MAX_LINE = 4 * CHUNK  # a longer line is redacted in pieces


def _pem_lines(text: bytes, in_pem: bool) -> Tuple[bytes, bool, int]:
    """Drop the body of multi-line private key blocks (the state carries across chunks)."""
    out: List[bytes] = []
    found = 0
    for line in text.splitlines(keepends=True):
        if in_pem:
            end = line.find(b"-----END ")
            if end >= 0:
                in_pem = False
                out.append(_REDACTED_B + b"\n" + line[end:])
            continue
        begin = line.find(b"-----BEGIN ")
        if begin >= 0 and b"PRIVATE KEY-----" in line[begin:] and b"-----END " not in line[begin:]:
            in_pem = True
            found += 1
        out.append(line)
    return b"".join(out), in_pem, found


def redact_stream(
    src: IO[bytes],
    write: Callable[[bytes], object],
    progress: Optional[Callable[[int], None]] = None,
) -> int:
    """Redact bytes from ``src`` to ``write`` in chunks of whole lines; returns secrets replaced.

    Memory stays bounded (a chunk of lines; one line of at most ``MAX_LINE``); the body of a
    multi-line private key block is dropped even when it spans chunks; ``progress`` gets the
    number of bytes read so far.
    """
    changed = 0
    done = 0
    buf = b""
    in_pem = False
    eof = False
    while not eof or buf:
        if not eof:
            block = src.read(CHUNK)
            eof = not block
            buf += block
        if eof:
            text, buf = buf, b""
        else:
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                if len(buf) < MAX_LINE:
                    continue
                cut = len(buf)
            text, buf = buf[:cut], buf[cut:]
        if not text:
            continue
        done += len(text)
        if in_pem or b"-----BEGIN " in text:
            text, in_pem, found = _pem_lines(text, in_pem)
            changed += found
            if in_pem and text and not text.endswith(b"\n"):
                text += b"\n"
            if in_pem and eof and not buf:
                text += _REDACTED_B + b"\n"
        clean, n = redact_bytes(text)
        changed += n
        write(clean)
        if progress is not None:
            progress(done)
    return changed


def redact_file(src: Union[str, Path], dest: Union[str, Path]) -> int:
    """Copy ``src`` to ``dest`` redacted; returns the number of secrets replaced."""
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        return redact_stream(fin, fout.write)


def examples() -> List[Tuple[str, str, str]]:
    """(rule name, example line, secret) of every rule: one test per shape."""
    return [(r.name, r.example, r.secret) for r in RULES]
