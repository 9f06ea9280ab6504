"""Real-recording manifests (analysis.music.recordings) and the music reader's weighted fit (train_emotion)."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from analysis.music import recordings
from analysis.music.recordings import pairwise_accuracy
from analysis.music.train_emotion import calibrate_tags, fit, real_windows, with_real

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = ROOT / "bench" / "data" / "music_truth.csv"
OTHER_GAMES = ROOT / "bench" / "data" / "music_other_games.csv"


@pytest.mark.parametrize("manifest", [VALIDATION, OTHER_GAMES], ids=["validation", "other games"])
def test_manifests_name_a_package_version_label_and_licence_for_every_track(manifest):
    rows = recordings.read_manifest(manifest)
    assert len(rows) >= 40
    for r in rows:
        assert r.package and r.version and r.label and r.label_source and r.licence, r
        assert r.valence in (-1, 0, 1) and r.arousal in (-1, 0, 1) and (r.valence or r.arousal), r
        assert r.local.parent == recordings.CACHE / r.package
    assert len({r.local for r in rows}) == len(rows)  # no two rows share a cache file
    assert len({r.source for r in rows}) >= 2


def test_other_games_never_come_from_the_validation_set_or_the_reserved_package():
    train = recordings.read_manifest(OTHER_GAMES)
    held = {r.package for r in recordings.read_manifest(VALIDATION)}
    assert not {r.package for r in train} & held
    assert not [r for r in train if "wesnoth" in r.package]  # reserved for an independent check
    labels = {(r.label, r.valence, r.arousal) for r in train}
    assert ("victory", 1, 1) in labels and ("defeat", -1, -1) in labels


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")
def test_fetch_keeps_only_the_listed_files_of_a_package_and_reads_zip_members(tmp_path, monkeypatch):
    """A small .deb with a plain file and a zip (as 0 A.D. and UFO: AI ship) is unpacked into the cache."""
    pkg = tmp_path / "pkg"
    music = pkg / "usr" / "share" / "games" / "g"
    music.mkdir(parents=True)
    (music / "calm.ogg").write_bytes(b"calm")
    (music / "unlisted.ogg").write_bytes(b"x")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("music/fight.ogg", b"fight")
    (music / "data.zip").write_bytes(buf.getvalue())
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN" / "control").write_text(
        "Package: g-music\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n")
    debs = tmp_path / "debs"
    debs.mkdir()
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(pkg), str(debs / "g-music_1.0-1_all.deb")],
                   check=True, capture_output=True)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "source,package,version,path,label,valence,arousal,label_source,licence\n"
        "g,g-music,1.0-1,usr/share/games/g/calm.ogg,peace,1,-1,cfg,GPL\n"
        "g,g-music,1.0-1,usr/share/games/g/data.zip!music/fight.ogg,combat,-1,1,cfg,GPL\n")
    monkeypatch.setattr(recordings, "CACHE", tmp_path / "cache")
    rows = recordings.fetch(manifest, debs)
    assert [r.local.read_bytes() for r in rows] == [b"calm", b"fight"]
    assert sorted(p.name for p in (tmp_path / "cache" / "g-music").iterdir()) == ["calm.ogg", "fight.ogg"]


def test_a_zero_weight_on_one_axis_leaves_that_head_untouched():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 5))
    y = np.column_stack([x @ [1.0, -0.5, 0, 0, 0.2], x @ [0, 0, 1.0, 0.5, 0]]) * 0.3
    wild = y.copy()
    wild[300:, 0] = 5.0  # nonsense valence on the last 100 windows...
    w = np.ones((400, 2))
    w[300:, 0] = 0.0  # ...which carry no valence weight
    masked = fit(x, wild, hidden=0, l2=0.01, steps=0, seed=0, weight=w)
    clean = fit(x, y, hidden=0, l2=0.01, steps=0, seed=0)
    both = fit(x, wild, hidden=0, l2=0.01, steps=0, seed=0)
    probe = rng.standard_normal((50, 5))
    r_masked = np.corrcoef(masked.predict(probe)[:, 0], clean.predict(probe)[:, 0])[0, 1]
    r_both = np.corrcoef(both.predict(probe)[:, 0], clean.predict(probe)[:, 0])[0, 1]
    assert r_masked > 0.99 > r_both
    assert np.allclose(masked.predict(probe)[:, 1], both.predict(probe)[:, 1], atol=1e-6)  # arousal: same data


def test_real_recordings_get_their_share_of_the_weight_and_no_weight_where_unlabelled():
    data = {"x": np.zeros((30, 3)), "y": np.column_stack([np.linspace(-0.4, 0.4, 30), np.linspace(-0.2, 0.2, 30)]),
            "ids": np.repeat(np.arange(3), 10), "held": np.array([False, False, True])}
    real = {"x": np.ones((8, 3)), "y": np.array([[1, -1]] * 4 + [[0, 1]] * 4, float),
            "ids": np.repeat(np.arange(2), 4), "held": np.array([False, False])}
    x, y, w = with_real(data, real, share=0.25)
    assert len(x) == 20 + 8  # the held-out rendered piece is left out
    assert np.allclose(w[:20].sum(0), 0.75) and np.allclose(w[20:].sum(0), 0.25)
    assert np.all(w[24:, 0] == 0)  # no valence label on the second recording
    assert np.allclose(np.abs(y[20:24, 0]), data["y"][:20, 0].std())  # scaled to the rendered labels' spread


def test_pairwise_accuracy_counts_pairs_whose_labels_differ_and_ties_half():
    label = np.array([1, 1, -1, 0])  # 0: unlabelled, left out
    assert pairwise_accuracy(np.array([0.5, 0.1, -0.2, 9.0]), label) == (1.0, 2)
    assert pairwise_accuracy(np.array([0.5, -0.3, -0.2, 9.0]), label) == (0.5, 2)
    assert pairwise_accuracy(np.array([0.5, -0.2, -0.2, 9.0]), label) == (0.75, 2)
    acc, pairs = pairwise_accuracy(np.zeros(3), np.ones(3))
    assert pairs == 0 and np.isnan(acc)


@pytest.mark.parametrize("package", ["0ad-data", "wesnoth-1.16-music"])
def test_training_refuses_the_validation_sets_packages_and_wesnoth(tmp_path, package):
    manifest = tmp_path / "m.csv"
    manifest.write_text("source,package,version,path,label,valence,arousal,label_source,licence\n"
                        f"g,{package},1,usr/a.ogg,peace,1,-1,cfg,GPL\n")
    with pytest.raises(SystemExit, match=package):
        real_windows(manifest, 10.0)


def test_a_clipped_model_reads_an_outlying_feature_as_the_clip_value():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 4))
    y = np.column_stack([x[:, 0], x[:, 1]]) * 0.3
    model = fit(x, y, hidden=0, l2=0.01, steps=0, seed=0, z_clip=3.0)
    far, edge = np.zeros((1, 4)), np.zeros((1, 4))
    far[0, 1], edge[0, 1] = 50.0 * x[:, 1].std(), 3.0 * x[:, 1].std()
    far[0, 1] += x[:, 1].mean()
    edge[0, 1] += x[:, 1].mean()
    assert np.allclose(model.predict(far), model.predict(edge))
    assert not np.allclose(fit(x, y, hidden=0, l2=0.01, steps=0, seed=0).predict(far)[0, 1],
                           model.predict(edge)[0, 1])


def test_the_tag_calibration_gives_the_contrast_the_labels_mean_and_spread():
    rng = np.random.default_rng(2)
    arousal = 0.3 * rng.standard_normal(500) + 0.1
    contrast = 4.0 * arousal + 0.5 * rng.standard_normal(500) - 2.0  # another scale, with noise
    scale, offset = calibrate_tags(contrast, arousal)
    mapped = scale * contrast + offset
    assert mapped.mean() == pytest.approx(arousal.mean()) and mapped.std() == pytest.approx(arousal.std())
    assert np.corrcoef(mapped, arousal)[0, 1] > 0.9
    flipped, _ = calibrate_tags(-contrast, arousal)  # a contrast that falls with arousal is turned around
    assert flipped == pytest.approx(-scale)
