"""Fetching the official bAbI v1.2 archive: download, safe extraction, per-file MD5 verification.

    python -m memnet_np data download [DIR]

The archive's own checksum is not published, so the trust anchor is `babi_v1_2.md5` next to this file: the MD5 of
every en/ and en-10k/ task file of the released dataset. `download_babi` checks them all after extracting.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from memnet_np.data.babi import FOLDER, DataNotFoundError

BABI_URL = "http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz"
CHECKSUMS = Path(__file__).with_name("babi_v1_2.md5")
ALTERNATIVES = ("alternatively download the archive yourself, unpack it and pass the folder with --data DIR or "
                "the MEMNET_DATA environment variable, or use --generated for the built-in story generator")


class DownloadError(RuntimeError):
    """The archive could not be fetched, is not what it should be, or is unsafe to unpack."""


# ---------------------------------------------------------------------------------------------------------------
# safe extraction

def _member_problem(m: tarfile.TarInfo) -> str | None:
    """Why a tar member must not be extracted, or None when it is safe."""
    name = m.name
    if not name or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "has a '..' component"
    if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
        return "is a device or fifo"
    if m.issym() or m.islnk():
        target = m.linkname
        if not target or target.startswith(("/", "\\")) or (len(target) > 1 and target[1] == ":"):
            return f"is a link to the absolute path {target!r}"
        # a symlink's target is relative to the folder holding it, a hard link's to the archive root
        base = posixpath.dirname(name) if m.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
        if resolved == ".." or resolved.startswith("../"):
            return f"is a link pointing outside the destination ({target!r})"
        return None
    if not (m.isfile() or m.isdir()):
        return "is neither a file, a folder nor a link"
    return None


def safe_extract(archive_path, dest_dir) -> list[Path]:
    """Extract a .tar.gz into dest_dir after checking EVERY member first; returns the extracted paths.

    Rejected (and nothing extracted): absolute paths, '..' components, links pointing outside dest_dir,
    device files and fifos. The error names the first bad member.
    """
    archive_path, dest = Path(archive_path), Path(dest_dir)
    try:
        tar = tarfile.open(archive_path, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise DownloadError(f"{archive_path} is not a readable tar archive: {e}") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DownloadError(f"{archive_path} is damaged: {e}") from None
        for m in members:
            problem = _member_problem(m)
            if problem:
                raise DownloadError(f"refusing to extract {archive_path}: member {m.name!r} {problem}")
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        for m in members:                # belt and braces: the joined path must stay inside dest
            target = (root / m.name).resolve()
            if target != root and root not in target.parents:
                raise DownloadError(f"refusing to extract {archive_path}: member {m.name!r} lands outside {dest}")
        try:
            if hasattr(tarfile, "data_filter"):  # Python 3.12+ and security releases of 3.9-3.11: a second opinion
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=members)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DownloadError(f"could not extract {archive_path}: {e}") from None
    return [dest / m.name for m in members]


# ---------------------------------------------------------------------------------------------------------------
# verification

def load_checksums(path=None) -> dict[str, str]:
    """{relative path: md5} from an `md5sum`-format list ("<md5>  <path>" per line); default babi_v1_2.md5."""
    sums = {}
    for line in Path(path or CHECKSUMS).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, rel = line.partition(" ")
        sums[rel.strip().lstrip("*")] = digest.lower()
    return sums


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_babi(root) -> list[str]:
    """MD5-check every listed file that exists under root (the tasks_1-20_v1-2 folder or its parent).

    Returns the problems (one line per mismatching file; empty when all is well). Raises DataNotFoundError when
    none of the listed files is there.
    """
    root = Path(root)
    if not any((root / s).is_dir() for s in ("en", "en-10k")) and (root / FOLDER).is_dir():
        root = root / FOLDER
    problems, checked = [], 0
    for rel, want in load_checksums().items():
        path = root / rel
        if not path.is_file():
            continue
        checked += 1
        got = _digest(path, "md5")
        if got != want:
            problems.append(f"{path}: md5 {got}, expected {want}")
    if checked == 0:
        raise DataNotFoundError(f"none of the bAbI v1.2 files listed in {CHECKSUMS.name} is under {root}")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# download

def _fetch(url: str, dest_file, progress) -> None:
    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0)
        done, next_report, start = 0, 0.0, time.monotonic()
        for chunk in iter(lambda: response.read(1 << 16), b""):
            dest_file.write(chunk)
            done += len(chunk)
            fraction = done / total if total else 0.0
            if total and fraction >= next_report:
                progress(f"  {done / 1e6:6.1f} / {total / 1e6:.1f} MB ({100 * fraction:3.0f}%)")
                next_report += 0.1
        if total and done != total:
            raise DownloadError(f"download of {url} stopped after {done} of {total} bytes; try again")
        progress(f"  {done / 1e6:.1f} MB in {time.monotonic() - start:.1f}s")


def download_babi(dest_dir, url: str = BABI_URL, sha256: str | None = None, progress=print) -> Path:
    """Download, check and unpack bAbI v1.2 into dest_dir; returns dest_dir/tasks_1-20_v1-2.

    The archive is written to a temporary file and renamed when complete; it is unpacked with `safe_extract`
    into a temporary folder, every task file is MD5-checked against babi_v1_2.md5, and only then is the folder
    moved into place. `sha256` (optional) checks the archive itself. `url` may be a file:// URL.
    """
    progress = progress or (lambda *_: None)
    dest = Path(dest_dir).expanduser()
    target = dest / FOLDER
    if target.exists():
        try:
            problems = verify_babi(target)
        except DataNotFoundError:
            problems = ["no bAbI task file in it"]
        if not problems:
            progress(f"{target} is already there and every file checks out; nothing to download")
            return target
        raise DownloadError(f"{target} exists but does not check out ({problems[0]}"
                            f"{f' and {len(problems) - 1} more' if len(problems) > 1 else ''}); "
                            f"remove it or download into another folder")
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / "tasks_1-20_v1-2.tar.gz"

    progress(f"downloading {url}")
    fd, part = tempfile.mkstemp(dir=dest, prefix=".tasks_1-20_v1-2.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            _fetch(url, f, progress)
        os.replace(part, archive)        # atomic: a half-downloaded archive never has the final name
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"could not download {url}: {reason}; {ALTERNATIVES}") from None
    finally:
        if os.path.exists(part):
            os.remove(part)

    if sha256 is not None:
        got = _digest(archive, "sha256")
        if got != sha256.lower():
            archive.unlink()
            raise DownloadError(f"{url}: archive sha256 {got}, expected {sha256}; the file was deleted")

    progress(f"unpacking {archive.name}")
    scratch = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
    try:
        safe_extract(archive, scratch)
        unpacked = scratch / FOLDER
        if not unpacked.is_dir():
            raise DownloadError(f"{url}: the archive has no {FOLDER}/ folder; is it the bAbI v1.2 archive?")
        try:
            problems = verify_babi(unpacked)
        except DataNotFoundError:
            raise DownloadError(f"{url}: the archive holds none of the bAbI v1.2 task files") from None
        if problems:
            archive.unlink()
            raise DownloadError(f"{url}: {len(problems)} file(s) fail the MD5 check, the download was discarded:\n  "
                                + "\n  ".join(problems[:10]))
        n_checked = sum(1 for rel in load_checksums() if (unpacked / rel).is_file())
        os.replace(unpacked, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    progress(f"{n_checked} task files verified (MD5) in {target}")
    return target
