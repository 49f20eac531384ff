"""Pinned downloads (pipeline/fetch.py, the udhr stage): digest check, the download cache, atomic unpacking."""

import base64
import hashlib
import io
import tarfile

import pytest

from pipeline import fetch


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _tarball(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIR_DOWNLOAD_CACHE", str(tmp_path / "cache"))
    data = _tarball({"package/declaration/eng.html": "<p>x</p>", "package/README.md": "r"})
    path = tmp_path / "registry" / "pkg-1.0.0.tgz"
    path.parent.mkdir()
    path.write_bytes(data)
    return path, data


def test_download_checks_the_digest_and_is_cached(source, tmp_path):
    path, data = source
    got = fetch.download(path.as_uri(), _integrity(data))
    assert got.read_bytes() == data and got.is_relative_to(tmp_path / "cache")
    path.unlink()  # the registry is gone: the cache serves it
    assert fetch.download(path.as_uri(), _integrity(data)) == got
    names = fetch.unpack(got, tmp_path / "out")
    assert "package/declaration/eng.html" in names
    assert (tmp_path / "out/package/declaration/eng.html").read_text() == "<p>x</p>"


def test_a_mismatching_download_is_refused_and_not_cached(source, tmp_path):
    path, data = source
    wrong = _integrity(b"something else")
    with pytest.raises(fetch.FetchError, match=r"^udhr.url: .*sha512 digest .* does not match the pinned"):
        fetch.download(path.as_uri(), wrong, key="udhr.url")
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))
    with pytest.raises(fetch.FetchError, match="is not '<sha256|sha384|sha512>-<base64 digest>'"):
        fetch.check_integrity(data, "md5-abc", "udhr.integrity")


def test_an_unreachable_source_names_the_key_and_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIR_DOWNLOAD_CACHE", str(tmp_path / "cache"))
    with pytest.raises(fetch.FetchError, match=r"^udhr.url: cannot download .*`dvc pull`"):
        fetch.download((tmp_path / "missing.tgz").as_uri(), _integrity(b""), key="udhr.url")


def test_a_bad_archive_leaves_no_output(tmp_path):
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not a tarball")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/old.txt").write_text("kept")
    with pytest.raises(fetch.FetchError, match="bad.tgz: not a readable tar archive"):
        fetch.unpack(bad, tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    assert (tmp_path / "out/old.txt").read_text() == "kept"


@pytest.mark.parametrize("data_filter", [True, False], ids=["tarfile-data-filter", "python-before-3.11.4"])
@pytest.mark.parametrize("member", ["../evil.txt", "link"])
def test_unpack_refuses_members_outside_the_archive(tmp_path, monkeypatch, data_filter, member):
    """tarfile's data filter where this Python has it; the same refusal without it (Debian 12's 3.11.2)."""
    if not data_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python's tarfile has no extraction filters")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    archive = tmp_path / "a" / "evil.tgz"
    archive.parent.mkdir()
    archive.write_bytes(buf.getvalue())
    with pytest.raises(fetch.FetchError, match="evil.tgz: "):
        fetch.unpack(archive, tmp_path / "a" / "out")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["evil.tgz"]
    assert not (tmp_path / "evil.txt").exists()
