"""Series: the kept set a tune learns from is one series' (a project the artist names); others never leak in."""
from __future__ import annotations

import json
import sqlite3

import pytest

from studio.engine import Studio
from studio.errors import StudioError
from studio.store import DEFAULT_SERIES, MIGRATIONS, Store


def test_a_tune_learns_from_the_current_series_only(workspace, fake):
    studio = Studio(workspace)
    assert studio.current_series("fake") == DEFAULT_SERIES == "main"
    stars = studio.generate("fake", "red stars", n=6)
    studio.curate("fake", accept=[c.id for c in stars[:3]])
    assert studio.use_series("fake", "  Lighthouse 2 ") == "Lighthouse 2"
    with pytest.raises(StudioError, match="no fake candidates yet in the series 'Lighthouse 2'"):
        studio.curate("fake", threshold=0.5)  # the other series' batch is not this one's
    with pytest.raises(StudioError, match="kept fake set of the series 'Lighthouse 2' is empty"):
        studio.start_tune("fake")
    sea = studio.generate("fake", "a lighthouse", n=6)
    result = studio.curate("fake", accept=[c.id for c in sea[:2]])
    assert result["series"] == "Lighthouse 2" and result["curated_total"] == 2
    assert {c.id for c in studio.next_kept_set("fake")} == {c.id for c in sea[:2]}
    job = studio.start_tune("fake", steps=2)
    spec = studio.store.job(job)["spec"]
    assert set(spec["examples"]) == {c.id for c in sea[:2]} and spec["series"] == "Lighthouse 2"
    studio.wait_tune(job)
    assert studio.series("fake") == ["main", "Lighthouse 2"]
    studio.use_series("fake", "main")  # switching back: the first set, untouched
    assert {c.id for c in studio.next_kept_set("fake")} == {c.id for c in stars[:3]}
    assert studio.curate("fake", threshold=0.0, temperature=0.0)["batch"] == stars[0].batch


@pytest.mark.parametrize("name", ["", "   ", "-dash first", "x" * 65, "a/b", "new\nline", None, 7])
def test_a_bad_series_name_is_one_sentence(workspace, fake, name):
    with pytest.raises(StudioError, match="A series name is 1 to 64 letters"):
        Studio(workspace).use_series("fake", name)


def test_batches_made_before_series_existed_are_in_main(tmp_path):
    """A workspace at schema 3 (no series) opens with every batch in main, its kept set whole."""
    root = tmp_path / "ws"
    root.mkdir()
    db = sqlite3.connect(root / "studio.db")
    db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
    for number, migration in enumerate(MIGRATIONS[:3], start=1):
        migration(db) if callable(migration) else db.executescript(migration)
        db.execute("INSERT INTO schema_migrations VALUES (?, 0)", (number,))
    db.execute("INSERT INTO batches (medium, prompt, version, model, params, seeds, purpose, created_at) "
               "VALUES ('fake', 'p', 'base', 'm', '{}', '[0]', 'curate', 1)")
    db.execute("INSERT INTO candidates VALUES ('c1', 'fake', 'p', 0, '{}', 'base', 'm', 'media/fake/c1.txt', "
               "?, '{}', 'hand_accepted', 1, 1)", (json.dumps({"txt": "media/fake/c1.txt"}),))
    db.execute("INSERT INTO batch_candidates VALUES (1, 'c1')")
    db.commit()
    db.close()
    store = Store(root)
    assert store.schema_version() == len(MIGRATIONS)
    assert store.series("fake") == [DEFAULT_SERIES]
    assert [c.id for c in store.curated("fake", series=DEFAULT_SERIES)] == ["c1"]
