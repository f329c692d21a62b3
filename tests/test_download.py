"""The download code against archives built in the test: no network, real manifest, bad checksums."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from moodgen.data import vgmidi as vg
from moodgen.data.download import SOURCES, download_vgmidi, load_manifest, sha256_file
from moodgen.errors import MoodgenError


def build_archives(tree: Path, out: Path, files: list[str], corrupt: str | None = None) -> str:
    """Zip `files` of a local VGMIDI tree the way GitHub lays out /archive/<commit>.zip."""
    out.mkdir(parents=True, exist_ok=True)
    for local_prefix, (commit, repo_prefix) in SOURCES.items():
        with zipfile.ZipFile(out / f"{commit}.zip", "w") as archive:
            for rel in files:
                if rel.startswith(local_prefix):
                    data = (tree / rel).read_bytes()
                    if rel == corrupt:
                        data = data + b"\0"
                    archive.writestr(f"vgmidi-{commit}/{repo_prefix}{rel[len(local_prefix) :]}", data)
    return (out / "{commit}.zip").as_uri().replace("%7B", "{").replace("%7D", "}")


def test_manifest_covers_the_shared_copy(vgmidi_root):
    manifest = load_manifest()
    assert len(manifest) > 1200
    for rel in ("v1/vgmidi_train.csv", "v1/vgmidi_test.csv", "unlabelled/train/Tetris_MusicABossRemix.mid"):
        assert manifest[rel] == sha256_file(vgmidi_root / rel)


def test_download_extracts_and_verifies_every_file(vgmidi_root, tmp_path):
    manifest = load_manifest()
    url = build_archives(vgmidi_root, tmp_path / "archives", list(manifest))
    dest = download_vgmidi(tmp_path / "cache" / "vgmidi", url_template=url, show_progress=False)
    assert not vg._missing(dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == sorted(manifest)
    assert len(vg.load_phrases(dest, "test")) == 40


def test_checksum_mismatch_aborts_and_leaves_nothing(vgmidi_root, tmp_path):
    manifest = load_manifest()
    subset = {rel: manifest[rel] for rel in ("v1/vgmidi_train.csv", "v1/vgmidi_test.csv")}
    url = build_archives(vgmidi_root, tmp_path / "archives", list(subset), corrupt="v1/vgmidi_test.csv")
    dest = tmp_path / "cache" / "vgmidi"
    with pytest.raises(MoodgenError, match=r"checksum mismatch for v1/vgmidi_test.csv"):
        download_vgmidi(dest, url_template=url, manifest=subset, show_progress=False)
    assert not dest.exists()
    assert not (tmp_path / "cache").exists()  # no staging folder, nor the cache folder it made, left behind


def test_unreachable_archive_is_one_clear_error(tmp_path):
    url = (tmp_path / "nowhere" / "{commit}.zip").as_uri().replace("%7B", "{").replace("%7D", "}")
    with pytest.raises(MoodgenError, match=r"could not download VGMIDI.*data.root"):
        download_vgmidi(tmp_path / "vgmidi", url_template=url, manifest={"v1/x.csv": "0"}, show_progress=False)


def test_unreachable_github_leaves_no_empty_cache_folder(tmp_path):
    cache = tmp_path / "home" / ".cache"
    cache.mkdir(parents=True)  # there before: stays
    dest = cache / "moodgen" / "vgmidi"
    with pytest.raises(MoodgenError, match=r"could not download VGMIDI from http://127\.0\.0\.1:9/"):
        download_vgmidi(dest, url_template="http://127.0.0.1:9/{commit}.zip", show_progress=False)
    assert cache.is_dir() and list(cache.iterdir()) == []  # no moodgen/, no staging folder


def test_resolve_root_downloads_into_the_user_cache(vgmidi_root, monkeypatch, tmp_path):
    manifest = load_manifest()
    url = build_archives(vgmidi_root, tmp_path / "archives", list(manifest))
    monkeypatch.delenv(vg.ENV_VAR, raising=False)
    monkeypatch.setattr(vg, "default_cache_root", lambda: tmp_path / "user-cache" / "vgmidi")
    monkeypatch.setattr(vg, "download_vgmidi", lambda dest: download_vgmidi(dest, url, show_progress=False))
    root = vg.resolve_root(None, download=True)
    assert root == tmp_path / "user-cache" / "vgmidi"
    assert vg.resolve_root(None, download=False) == root  # second time: found, no download
