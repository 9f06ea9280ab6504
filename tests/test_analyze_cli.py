"""``soundtrack analyze`` through the real entry point: --json, --plot, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soundtrack.cli import main


def test_json_output_and_plot(four_shot_clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "arcs.png"
    rc = main(["analyze", str(four_shot_clip.path), "--json", "--plot", str(png), "--hop", "1.0"])
    out = capsys.readouterr()
    assert rc == 0
    data = json.loads(out.out)  # stdout holds the JSON alone
    assert len(data["cuts"]) == 3 and data["has_audio"] is True
    assert len(data["arc"]["times"]) == 7 and data["arc"]["times"][0] == 0.5
    assert set(data["sources"]) == {"visual", "audio"}
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_plain_text_summary(silent_clip, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["analyze", str(silent_clip.path), "--sources", "visual"])
    out = capsys.readouterr().out
    assert rc == 0 and "audio: none" in out and "cuts (s): none" in out
    assert "subtitles read" not in out
    srt = Path(__file__).parent / "data" / "joy_then_grim.srt"
    assert main(["analyze", str(silent_clip.path), "--sources", "visual", "--subtitles", str(srt)]) == 0
    out = capsys.readouterr().out
    assert f"subtitles read: {srt}" in out and "sources: visual, subtitles" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "file not found"),
        (["--content-type", "western"], "unknown content type 'western'"),
        (["--sources", "visual,smell"], "unknown source"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path: Path, four_shot_clip, capsys, extra, message) -> None:
    clip = tmp_path / "missing.mp4" if not extra else four_shot_clip.path
    rc = main(["analyze", str(clip), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert message in err[-1] and err[-1].startswith("soundtrack analyze: error:")
    assert "Traceback" not in "\n".join(err)


def test_a_plot_goes_into_a_new_folder_and_a_bad_plot_path_is_refused_before_the_analysis(
    silent_clip, tmp_path: Path, capsys, monkeypatch
) -> None:
    """`--plot out/arc.png` with no out/ failed with "No such file or directory" after the whole analysis
    (minutes for a long clip); a file in the folder's place was found only then too."""
    png = tmp_path / "new" / "deeper" / "arc.png"
    assert main(["analyze", str(silent_clip.path), "--sources", "visual", "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    import analysis.video

    def no_analysis(*_a, **_k):
        raise AssertionError("analysed before the plot path was checked")

    monkeypatch.setattr(analysis.video, "analyze_video", no_analysis)
    (tmp_path / "notes.txt").write_text("a file")
    (tmp_path / "folder.png").mkdir()
    for plot, said in ((tmp_path / "notes.txt" / "arc.png", "notes.txt is a file, not a folder"),
                       (tmp_path / "folder.png", "folder.png: is a folder")):
        assert main(["analyze", str(silent_clip.path), "--plot", str(plot)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0] and err[0].startswith("soundtrack analyze: error:")
