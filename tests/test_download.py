"""The downloader: safe extraction of hostile archives, MD5 verification, download from a file:// URL."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from memnet_np.data import DataNotFoundError, DownloadError, download_babi, parse_babi, safe_extract, verify_babi
from memnet_np.data import download

TRAIN1 = "qa1_single-supporting-fact_train.txt"
TEST1 = "qa1_single-supporting-fact_test.txt"


def make_tar(path: Path, members) -> Path:
    """members: (name, bytes) for files, or ready TarInfo objects (links, devices, folders)."""
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                name, content = m
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# safe_extract

def test_safe_extract_good_archive(tmp_path):
    folder = tarfile.TarInfo("pkg/docs")
    folder.type = tarfile.DIRTYPE
    archive = make_tar(tmp_path / "good.tar.gz", [
        ("pkg/en/a.txt", b"1 Mary moved.\n"), ("pkg/b.txt", b"bee"), folder,
        link("pkg/docs/a-link", "../en/a.txt"),                  # a symlink that stays inside is fine
        link("pkg/hard", "pkg/b.txt", tarfile.LNKTYPE),          # and so is a hard link to a member
    ])
    out = tmp_path / "out"
    paths = safe_extract(archive, out)
    assert paths == [out / "pkg/en/a.txt", out / "pkg/b.txt", out / "pkg/docs", out / "pkg/docs/a-link",
                     out / "pkg/hard"]
    assert (out / "pkg/en/a.txt").read_bytes() == b"1 Mary moved.\n"
    assert (out / "pkg/docs/a-link").read_bytes() == b"1 Mary moved.\n"
    assert (out / "pkg/hard").read_bytes() == b"bee"


@pytest.mark.parametrize("bad, why", [
    (("/tmp/evil.txt", b"x"), "absolute path"),
    (("../evil.txt", b"x"), "'..' component"),
    (("pkg/../../evil.txt", b"x"), "'..' component"),
    (link("pkg/escape", "../../etc"), "outside the destination"),
    (link("pkg/deep/escape", "../../../x"), "outside the destination"),
    (link("pkg/abs", "/etc/passwd"), "absolute path '/etc/passwd'"),
    (link("pkg/hard", "../outside.txt", tarfile.LNKTYPE), "outside the destination"),
    (link("pkg/hardabs", "/etc/passwd", tarfile.LNKTYPE), "absolute path"),
])
def test_safe_extract_rejects_and_extracts_nothing(tmp_path, bad, why):
    archive = make_tar(tmp_path / "bad.tar.gz", [("pkg/ok.txt", b"fine"), bad, ("pkg/later.txt", b"fine")])
    out = tmp_path / "out"
    name = bad.name if isinstance(bad, tarfile.TarInfo) else bad[0]
    with pytest.raises(DownloadError) as e:
        safe_extract(archive, out)
    assert repr(name) in str(e.value) and why in str(e.value)
    assert not out.exists() or not any(out.rglob("*"))             # validated first: nothing was written
    assert not (tmp_path / "evil.txt").exists()


def test_safe_extract_rejects_devices(tmp_path):
    dev = tarfile.TarInfo("pkg/null")
    dev.type = tarfile.CHRTYPE
    dev.devmajor, dev.devminor = 1, 3
    fifo = tarfile.TarInfo("pkg/fifo")
    fifo.type = tarfile.FIFOTYPE
    for m in (dev, fifo):
        archive = make_tar(tmp_path / "dev.tar.gz", [("pkg/ok.txt", b"fine"), m])
        with pytest.raises(DownloadError, match=f"'{m.name}' is a device or fifo"):
            safe_extract(archive, tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_safe_extract_without_the_stdlib_filter(tmp_path, monkeypatch):
    """Pythons without tarfile's "data" filter rely on our own checks alone."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    good = make_tar(tmp_path / "good.tar.gz", [("pkg/a.txt", b"a"), link("pkg/l", "a.txt")])
    assert safe_extract(good, tmp_path / "out") == [tmp_path / "out/pkg/a.txt", tmp_path / "out/pkg/l"]
    assert (tmp_path / "out/pkg/l").read_bytes() == b"a"
    bad = make_tar(tmp_path / "bad.tar.gz", [("pkg/b.txt", b"b"), link("pkg/up", "../../..")])
    with pytest.raises(DownloadError, match="'pkg/up' is a link pointing outside"):
        safe_extract(bad, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_safe_extract_truncated_archive(tmp_path):
    whole = make_tar(tmp_path / "whole.tar.gz", [("pkg/a.txt", b"a" * 100_000)]).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DownloadError, match="cut.tar.gz"):
        safe_extract(cut, tmp_path / "out")


def test_safe_extract_not_an_archive(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"<html>not found</html>")
    with pytest.raises(DownloadError, match="not a readable tar archive"):
        safe_extract(junk, tmp_path / "out")


# ---------------------------------------------------------------------------------------------------------------
# verification

def test_checksum_list_is_complete():
    sums = download.load_checksums()
    assert len(sums) == 80                                         # 20 tasks x train/test x en/en-10k
    assert sums["en-10k/qa3_three-supporting-facts_train.txt"] == "639cbebe6f1ce51b3b5d2f32148ed352"
    assert all(len(v) == 32 and int(v, 16) >= 0 for v in sums.values())
    assert sums["en/qa1_single-supporting-fact_test.txt"] == sums["en-10k/qa1_single-supporting-fact_test.txt"]


def test_checksum_list_matches_the_shared_copy(babi_root):
    shared = babi_root / "MD5SUMS"
    if not shared.exists():
        pytest.skip(f"{shared} not present")
    ours, theirs = download.load_checksums(), download.load_checksums(shared)
    assert {k: ours[k] for k in theirs} == theirs


def test_verify_real_data(babi_root):
    assert verify_babi(babi_root) == []
    if babi_root.name == "tasks_1-20_v1-2":
        assert verify_babi(babi_root.parent) == []                 # the parent folder works too


def test_verify_detects_tampering(tmp_path, babi_root):
    root = tmp_path / "tasks_1-20_v1-2"
    (root / "en").mkdir(parents=True)
    good = (babi_root / "en" / TEST1).read_bytes()
    (root / "en" / TEST1).write_bytes(good)
    assert verify_babi(root) == [] and verify_babi(tmp_path) == []
    (root / "en" / TEST1).write_bytes(good.replace(b"bathroom", b"bedroom", 1))
    problems = verify_babi(root)
    assert len(problems) == 1 and TEST1 in problems[0] and "expected" in problems[0]
    with pytest.raises(DataNotFoundError, match="none of the bAbI v1.2 files"):
        verify_babi(tmp_path / "empty")


# ---------------------------------------------------------------------------------------------------------------
# download_babi from a local archive (no network)

@pytest.fixture
def fake_babi(tmp_path, tiny_babi_dir, monkeypatch):
    """A tiny archive tasks_1-20_v1-2/en/qa1_*.txt and a checksum list that trusts its files."""
    files = {f"en/{n}": (tiny_babi_dir / "en" / n).read_bytes() for n in (TRAIN1, TEST1)}
    sums = tmp_path / "sums.md5"
    sums.write_text("".join(f"{hashlib.md5(b).hexdigest()}  {rel}\n" for rel, b in files.items()))
    monkeypatch.setattr(download, "CHECKSUMS", sums)
    archive = make_tar(tmp_path / "babi.tar.gz", [(f"tasks_1-20_v1-2/{rel}", b) for rel, b in files.items()])
    return archive, files


def test_download_from_file_url(tmp_path, fake_babi):
    archive, files = fake_babi
    dest = tmp_path / "dest"
    log = []
    root = download_babi(dest, url=archive.as_uri(), sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
                         progress=log.append)
    assert root == dest / "tasks_1-20_v1-2"
    assert (root / "en" / TRAIN1).read_bytes() == files[f"en/{TRAIN1}"]
    assert len(parse_babi(root / "en" / TRAIN1)) == 10
    assert sorted(p.name for p in dest.iterdir()) == ["tasks_1-20_v1-2", "tasks_1-20_v1-2.tar.gz"]  # no leftovers
    assert log[0].startswith("downloading file://") and "100%" in " ".join(log) and "2 task files verified" in log[-1]
    # a second call finds the verified folder and does not download again (the URL would fail)
    assert download_babi(dest, url=(tmp_path / "gone.tar.gz").as_uri(), progress=log.append) == root
    assert "nothing to download" in log[-1]


def test_download_rejects_a_tampered_file(tmp_path, fake_babi, tiny_babi_dir):
    _, files = fake_babi
    tampered = files[f"en/{TEST1}"].replace(b"kitchen", b"cellar")
    archive = make_tar(tmp_path / "tampered.tar.gz", [(f"tasks_1-20_v1-2/en/{TRAIN1}", files[f"en/{TRAIN1}"]),
                                                     (f"tasks_1-20_v1-2/en/{TEST1}", tampered)])
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match=f"1 file\\(s\\) fail the MD5 check(.|\\n)*{TEST1}: md5 "):
        download_babi(dest, url=archive.as_uri(), progress=None)
    assert not (dest / "tasks_1-20_v1-2").exists() and list(dest.iterdir()) == []   # nothing half-made left


def test_download_wrong_sha256_and_bad_archives(tmp_path, fake_babi):
    archive, _ = fake_babi
    with pytest.raises(DownloadError, match="archive sha256 .* expected 00ff"):
        download_babi(tmp_path / "d1", url=archive.as_uri(), sha256="00ff", progress=None)
    assert list((tmp_path / "d1").iterdir()) == []
    other = make_tar(tmp_path / "other.tar.gz", [("something/else.txt", b"x")])
    with pytest.raises(DownloadError, match="no tasks_1-20_v1-2/ folder"):
        download_babi(tmp_path / "d2", url=other.as_uri(), progress=None)
    hostile = make_tar(tmp_path / "hostile.tar.gz", [("tasks_1-20_v1-2/../../evil.txt", b"x")])
    with pytest.raises(DownloadError, match="'..' component"):
        download_babi(tmp_path / "d3", url=hostile.as_uri(), progress=None)
    assert not (tmp_path / "evil.txt").exists()


def test_download_refuses_to_overwrite_a_bad_folder(tmp_path, fake_babi):
    archive, _ = fake_babi
    dest = tmp_path / "dest"
    (dest / "tasks_1-20_v1-2" / "en").mkdir(parents=True)
    (dest / "tasks_1-20_v1-2" / "en" / TRAIN1).write_text("1 something else.\n")
    with pytest.raises(DownloadError, match="exists but does not check out"):
        download_babi(dest, url=archive.as_uri(), progress=None)
    assert (dest / "tasks_1-20_v1-2" / "en" / TRAIN1).read_text() == "1 something else.\n"


@pytest.mark.parametrize("url", ["file:///nonexistent/memnet_np/tasks.tar.gz", "http://127.0.0.1:9/tasks.tar.gz",
                                 "nosuchscheme://x"])
def test_download_network_failure(tmp_path, url):
    with pytest.raises(DownloadError) as e:
        download_babi(tmp_path, url=url, progress=None)
    msg = str(e.value)
    assert msg.startswith(f"could not download {url}")
    for hint in ("--data", "MEMNET_DATA", "--generated"):
        assert hint in msg
    assert list(tmp_path.iterdir()) == []                          # the temporary file is gone


def test_download_real_files_against_shipped_checksums(tmp_path, babi_root):
    """Real task files packed like the official archive pass the shipped MD5 list; a changed one fails it."""
    real = [(f"tasks_1-20_v1-2/en/{n}", (babi_root / "en" / n).read_bytes()) for n in (TRAIN1, TEST1)]
    archive = make_tar(tmp_path / "real.tar.gz", real)
    root = download_babi(tmp_path / "ok", url=archive.as_uri(), progress=None)
    assert md5(root / "en" / TRAIN1) == download.load_checksums()[f"en/{TRAIN1}"]
    bad = make_tar(tmp_path / "bad.tar.gz", [real[0], (real[1][0], real[1][1] + b"1 extra line.\n")])
    with pytest.raises(DownloadError, match="MD5"):
        download_babi(tmp_path / "bad", url=bad.as_uri(), progress=None)
