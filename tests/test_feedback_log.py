"""Feedback log: recommendations and events in SQLite (WAL), concurrency, export and delete."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from analysis.errors import MediaError, ParameterError
from matching.feedback.log import EVENT_KINDS, Candidate, FeedbackLog, UnknownRecommendation, clip_fingerprint

CANDS = [
    {"track_id": 1, "title": "a", "score": 0.9, "dtw_score": 0.95, "embedding_score": 0.7, "start": 3.0,
     "stretch": 1.02},
    {"track_id": 2, "title": "b", "score": 0.6, "dtw_score": 0.5, "embedding_score": 0.9, "start": 0.0,
     "stretch": 0.97},
]


@pytest.fixture
def log(tmp_path):
    return FeedbackLog(tmp_path / "lib.db")


def test_database_is_sqlite_in_wal_mode(log, tmp_path):
    log.log_recommendation(user_id="u1", clip_fingerprint="f", candidates=CANDS)
    with sqlite3.connect(tmp_path / "lib.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"feedback_recommendations", "feedback_candidates", "feedback_events"} <= tables


def test_recommendation_and_events_round_trip(log):
    rec = log.log_recommendation(
        user_id="u1", clip_fingerprint="abc", candidates=CANDS, weights={"w_dtw": 0.7, "w_emb": 0.3},
        content_type="drama",
    )
    log.log_event(rec, "play", position=0)
    log.log_event(rec, "skip", position=1, value=2.5, duration=10.0)
    log.rate(rec, 0, 4)
    log.log_event(rec, "compose_instead")
    obs = log.observations()
    assert [o.kind for o in obs] == ["play", "skip", "rating", "compose_instead"]
    rating = obs[2]
    assert (rating.value, rating.dtw_score, rating.embedding_score) == (4.0, 0.95, 0.7)
    assert rating.weights == {"w_dtw": 0.7, "w_emb": 0.3} and rating.content_type == "drama"
    assert obs[1].dtw_score == 0.5 and obs[1].value == 2.5 and obs[1].duration == 10.0
    assert obs[3].position is None and obs[3].dtw_score is None
    assert log.observations(since_id=obs[1].event_id)[0].kind == "rating"
    assert log.observations(content_type="action") == []
    counts = log.counts()
    assert counts["recommendations"] == 1 and counts["candidates"] == 2 and counts["rating"] == 1


def test_bad_events_are_refused_with_clear_messages(log):
    rec = log.log_recommendation(user_id="u1", clip_fingerprint="abc", candidates=CANDS)
    with pytest.raises(ParameterError, match=r"whole number from 1 to 5 \(received 6\)"):
        log.rate(rec, 0, 6)
    with pytest.raises(ParameterError, match="`kind` must be one of"):
        log.log_event(rec, "like", position=0)
    with pytest.raises(ParameterError, match="no recommendation with id 999"):
        log.rate(999, 0, 3)
    with pytest.raises(ParameterError, match="`position`"):
        log.log_event(rec, "play")
    with pytest.raises(ParameterError, match="user_id"):
        log.log_recommendation(user_id="bob smith", clip_fingerprint="x", candidates=[])
    with pytest.raises(ParameterError, match="dtw_score"):
        log.log_recommendation(user_id="u", clip_fingerprint="x", candidates=[{"score": 1.0}])
    assert set(EVENT_KINDS) >= {"rating", "skip", "replay", "complete", "download", "compose_instead"}


def test_fifty_concurrent_rating_writes_lose_nothing(log):
    rec = log.log_recommendation(user_id="crowd", clip_fingerprint="abc", candidates=CANDS)
    barrier = threading.Barrier(50)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            barrier.wait()
            log.rate(rec, i % 2, 1 + i % 5)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ratings = [o for o in log.observations() if o.kind == "rating"]
    assert len(ratings) == 50
    assert sorted(o.value for o in ratings) == sorted(float(1 + i % 5) for i in range(50))


def test_export_and_delete_one_user(log):
    mine = log.log_recommendation(user_id="me", clip_fingerprint="c1", candidates=CANDS, weights={"w_dtw": 0.6})
    other = log.log_recommendation(user_id="other", clip_fingerprint="c1", candidates=CANDS)
    log.rate(mine, 1, 2)
    log.log_event(mine, "complete", position=0)
    log.rate(other, 0, 5)

    data = json.loads(log.export_user_json("me"))
    assert data["user_id"] == "me"
    assert len(data["recommendations"]) == 1
    assert data["recommendations"][0]["weights"] == {"w_dtw": 0.6}
    assert [c["title"] for c in data["recommendations"][0]["candidates"]] == ["a", "b"]
    assert [e["kind"] for e in data["events"]] == ["rating", "complete"]
    assert "other" not in json.dumps(data)

    removed = log.delete_user("me")
    assert removed == {"recommendations": 1, "candidates": 2, "events": 2}
    assert log.export_user("me")["recommendations"] == [] and log.export_user("me")["events"] == []
    left = log.observations()
    assert [(o.user_id, o.value) for o in left] == [("other", 5.0)]
    assert log.counts()["candidates"] == 2


def test_candidate_from_match_like_object_and_fingerprint(tmp_path):
    class M:
        track_id, title, score, dtw_score, embedding_score, start, stretch = 7, "t", 0.5, 0.4, 0.6, 1.0, 1.0

    assert Candidate.of(M()).track_id == 7
    clip = tmp_path / "x.bin"
    clip.write_bytes(b"abc")
    assert clip_fingerprint(clip) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(MediaError, match=r"missing\.mp4"):
        clip_fingerprint(tmp_path / "missing.mp4")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "rating", "position": 2, "value": 5}, r"`position` must be within 0 and 1, .*received 2"),
        ({"kind": "rating", "position": 99, "value": 5}, r"`position` must be within 0 and 1, .*received 99"),
        ({"kind": "rating", "position": -1, "value": 5}, r"`position` must be within 0 and 1, .*received -1"),
        ({"kind": "rating", "position": 0.7, "value": 5}, r"`position` must be a whole number \(received 0.7\)"),
        ({"kind": "rating", "position": 0, "value": True}, r"`value` must be a finite number \(received True\)"),
        ({"kind": "skip", "position": 0, "value": -5.0, "duration": 10.0}, r"`value` of a skip .*received -5.0"),
        ({"kind": "skip", "position": 0, "value": 2.0, "duration": 0.0}, r"`duration` must be positive"),
        ({"kind": "skip", "position": 0, "value": float("nan"), "duration": 10.0}, r"`value` must be a finite"),
        ({"kind": "compose_instead", "position": 5}, r"`position` must be within 0 and 1"),
    ],
)
def test_impossible_events_are_refused_before_anything_is_stored(log, kwargs, message):
    rec = log.log_recommendation(user_id="u1", clip_fingerprint="abc", candidates=CANDS)  # positions 0 and 1
    kind = kwargs.pop("kind")
    with pytest.raises(ParameterError, match=message):
        log.log_event(rec, kind, **kwargs)
    assert log.observations() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"score": float("nan"), "dtw_score": float("nan")}, r"`score` must be within 0 and 1 \(received nan"),
        ({"dtw_score": 1e6}, r"candidate `dtw_score` must be within 0 and 1 \(received 1000000.0\)"),
        ({"embedding_score": -1e6}, r"candidate `embedding_score` must be within 0 and 1"),
        ({"track_id": 10**30}, r"candidate `track_id` must be a track id"),  # was SQLite's OverflowError
        ({"start": float("nan")}, r"candidate `start` must be a finite number of at least 0 \(received nan\)"),
        ({"stretch": -5.0}, r"candidate `stretch` must be a finite number"),
        ({"content_type": "nonsense"}, r"`content_type` must be one of .*received 'nonsense'"),
    ],
)
def test_impossible_recommendations_are_refused_before_anything_is_stored(log, change, message):
    content_type = change.pop("content_type", "general")
    cands = [{**CANDS[0], **change}, CANDS[1]]
    with pytest.raises(ParameterError, match=message):
        log.log_recommendation(user_id="u1", clip_fingerprint="abc", candidates=cands, content_type=content_type)
    assert log.counts() == {"recommendations": 0, "candidates": 0}


@pytest.mark.parametrize(
    ("rec_id", "error", "message"),
    [  # each was a ValueError or OverflowError from int() or SQLite, or rated list 1 (1.7, True)
        ("1; drop table", ParameterError, r"`recommendation_id` must be a whole number \(received '1; drop table'\)"),
        (float("nan"), ParameterError, r"`recommendation_id` must be a whole number \(received nan\)"),
        (1.7, ParameterError, r"`recommendation_id` must be a whole number \(received 1.7\)"),
        (True, ParameterError, r"`recommendation_id` must be a whole number \(received True\)"),
        (10**30, UnknownRecommendation, r"no recommendation with id 10{30} in the feedback log"),
    ],
)
def test_malformed_recommendation_ids_are_refused_clearly(log, rec_id, error, message):
    log.log_recommendation(user_id="u1", clip_fingerprint="abc", candidates=CANDS)  # id 1
    with pytest.raises(error, match=message):
        log.rate(rec_id, 0, 3)
    assert log.observations() == []


def test_hostile_payloads_get_a_short_message_and_store_nothing(log):
    with pytest.raises(ParameterError, match="`kind` must be one of") as err:
        log.log_event(1, "x" * 1_000_000, position=0)
    assert len(str(err.value)) < 300  # the megabyte is not echoed back
    with pytest.raises(ParameterError, match="`user_id` must be") as err:
        log.log_recommendation(user_id="u" * 1_000_000, clip_fingerprint="c", candidates=CANDS)
    assert len(str(err.value)) < 300
    with pytest.raises(ParameterError, match=r"`weights` must be finite numbers .*'transition': nan"):
        log.log_recommendation(user_id="u1", clip_fingerprint="c", candidates=CANDS,
                               weights={"transition": float("nan")})  # fmt: skip
    assert log.counts() == {"recommendations": 0, "candidates": 0}


def test_a_rating_on_a_list_deleted_while_it_was_sent_is_refused_in_words(db_url, monkeypatch):
    # The listener rates in one tab while "Delete my data" (or `soundtrack feedback delete`) runs: the
    # deletion lands after the log found the list and before it wrote the rating. The foreign key
    # refused the write with a raw IntegrityError (the page said "the server could not do that").
    log = FeedbackLog(db_url)
    rec = log.log_recommendation(user_id="me", clip_fingerprint="c1", candidates=CANDS)
    elsewhere = FeedbackLog(db_url)  # another engine, as the CLI in another process
    begin = log.engine.begin

    def deleted_meanwhile():
        elsewhere.delete_user("me")
        return begin()

    monkeypatch.setattr(log.engine, "begin", deleted_meanwhile)
    with pytest.raises(UnknownRecommendation, match=f"no recommendation with id {rec} in the feedback log"):
        log.rate(rec, 0, 4)
    monkeypatch.undo()
    assert log.counts() == {"recommendations": 0, "candidates": 0}
