"""Fetch VGMIDI from the upstream GitHub archives at pinned commits, verified file by file.

GitHub's zip archives are not byte-stable, so the check is on each extracted file against
the sha256 manifest shipped with the package (``vgmidi.sha256``), never on the zip itself.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path

from ..errors import MoodgenError

ARCHIVE_URL = "https://github.com/lucasnfe/vgmidi/archive/{commit}.zip"

# local folder prefix -> (upstream commit, folder prefix inside the repository at that commit)
SOURCES: dict[str, tuple[str, str]] = {
    "v1/": ("e17be0e60483b4af418a3b0ac9f3356758e45d2b", "labelled/"),
    "unlabelled/": ("84b991ff250feccb510ef30deb6a46104a1e1bc0", "unlabelled/"),
    "v2/": ("1e62f0af8c866ded8e665cefad06dc02c35cb739", ""),
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest() -> dict[str, str]:
    """Relative path -> sha256 for every file of the local layout."""
    text = resources.files(__package__).joinpath("vgmidi.sha256").read_text()
    manifest = {}
    for line in text.splitlines():
        if line.strip():
            digest, rel = line.split("  ", 1)
            manifest[rel] = digest
    return manifest


def _archive_members(archive: zipfile.ZipFile, prefix: str) -> dict[str, zipfile.ZipInfo]:
    """Archive members below the repository's ``prefix``, keyed by path inside the repository."""
    members = {}
    for info in archive.infolist():
        _, _, inside = info.filename.partition("/")  # drop "vgmidi-<commit>/"
        if inside.startswith(prefix) and not info.is_dir():
            members[inside] = info
    return members


def download_vgmidi(
    dest: Path,
    url_template: str = ARCHIVE_URL,
    manifest: dict[str, str] | None = None,
    show_progress: bool = True,
) -> Path:
    """Download the pinned archives and extract the manifest's files into ``dest``.

    Every file is hashed before it is moved into place; a mismatch aborts with the file's
    name, and nothing half-written is left behind (extraction happens in a temp folder).
    """
    manifest = manifest if manifest is not None else load_manifest()
    dest = Path(dest)
    created = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".vgmidi-download-", dir=dest.parent))
    done = False
    try:
        for local_prefix, (commit, repo_prefix) in SOURCES.items():
            wanted = {rel: digest for rel, digest in manifest.items() if rel.startswith(local_prefix)}
            if not wanted:
                continue
            url = url_template.format(commit=commit)
            if show_progress:
                print(f"moodgen: downloading VGMIDI {local_prefix} from {url}", flush=True)
            zip_path = staging / f"{commit}.zip"
            try:
                with urllib.request.urlopen(url, timeout=60) as response, open(zip_path, "wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as exc:
                raise MoodgenError(
                    f"could not download VGMIDI from {url} ({exc}); offline? point data.root "
                    "(or MOODGEN_DATA_DIR) at a local copy: data.root=<your VGMIDI folder, holding v1/ and v2/>"
                ) from None
            with zipfile.ZipFile(zip_path) as archive:
                members = _archive_members(archive, repo_prefix)
                for rel, digest in wanted.items():
                    inside = repo_prefix + rel[len(local_prefix) :]
                    if inside not in members:
                        raise MoodgenError(f"VGMIDI archive {url} lacks {inside}; cannot build {rel}")
                    target = staging / "tree" / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(members[inside]) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                    if sha256_file(target) != digest:
                        raise MoodgenError(
                            f"checksum mismatch for {rel} from {url}: the upstream file changed; "
                            "use a verified copy via data.root"
                        )
            zip_path.unlink()
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staging / "tree"), dest)
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done:  # offline, a changed upstream file: no empty cache folders left behind either
            for folder in created:  # deepest first; one another process has filled meanwhile stays
                try:
                    folder.rmdir()
                except OSError:
                    break
    return dest
