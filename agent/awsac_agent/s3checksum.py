"""The checksum S3 stores with every object awsac uploads (client and agent), and how a local file
is compared with it: CRC32 of the whole object (``ChecksumType=FULL_OBJECT`` for multipart
uploads), so "identical" never depends on how an object was split into parts. Stdlib only.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from pathlib import Path
from typing import Any, Callable, Collection, Dict, Mapping, Optional, Tuple

ALGORITHM = "CRC32"
FULL_OBJECT = "FULL_OBJECT"
_READ = 1 << 20


def crc32_text(crc: int) -> str:
    """A CRC32 value as S3 writes it (base64 of the 4 big-endian bytes)."""
    return base64.b64encode((crc & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def file_checksum(
    path: Path, algorithm: str = ALGORITHM, progress: Optional[Callable[[int], None]] = None
) -> str:
    """The whole-file checksum of ``path`` in S3's text form (CRC32, SHA256, SHA1 or MD5)."""
    crc = 0
    digest = None if algorithm == "CRC32" else hashlib.new(algorithm.lower())
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_READ)
            if not block:
                break
            if digest is None:
                crc = zlib.crc32(block, crc)
            else:
                digest.update(block)
            if progress is not None:
                progress(len(block))
    if digest is None:
        return crc32_text(crc)
    if algorithm == "MD5":
        return digest.hexdigest()
    return base64.b64encode(digest.digest()).decode()


def upload_args(allowed: Collection[str] = ("ChecksumAlgorithm", "ChecksumType")) -> Dict[str, str]:
    """ExtraArgs for boto3's ``upload_file`` that make S3 store the whole-object CRC32; an older
    boto3 that does not know ``ChecksumType`` (Debian 12's 1.26) gets the algorithm alone (its
    multipart uploads then carry a composite checksum, compared through the object's parts)."""
    if "ChecksumAlgorithm" not in allowed:  # a boto3 older than flexible checksums
        return {}
    args = {"ChecksumAlgorithm": ALGORITHM}
    if "ChecksumType" in allowed:
        args["ChecksumType"] = FULL_OBJECT
    return args


def stored_checksum(head: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    """(algorithm, value) of the whole-object checksum in a HeadObject/GetObject response (made
    with ``ChecksumMode=ENABLED``) that a local file can be compared with, or None.

    A composite checksum (``value-N``, per-part checksums combined) is not whole-object; an
    ETag without ``-`` is the MD5 of a single-part, non-KMS object and is used last.
    """
    kind = head.get("ChecksumType")
    for algorithm in ("CRC32", "SHA256", "SHA1"):
        value = head.get(f"Checksum{algorithm}")
        if value and kind != "COMPOSITE" and "-" not in str(value):
            return algorithm, str(value)
    etag = str(head.get("ETag") or "").strip('"')
    kms = head.get("ServerSideEncryption") == "aws:kms"
    if etag and "-" not in etag and len(etag) == 32 and not kms:
        return "MD5", etag
    return None
