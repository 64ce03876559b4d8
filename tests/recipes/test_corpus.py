"""The pretraining corpus: which datasets a recipe uses, and generation that resumes."""
from __future__ import annotations

from physviz.recipes.corpus import BUNDLED_CORPUS, CorpusEntry, corpus_entries, corpus_table, generate_corpus
from physviz.recipes.recipe import Recipe


def test_corpus_generation_resumes(tmp_path):
    entries = (
        CorpusEntry("fitzhugh_nagumo", 3, {"resolution": 16, "steps": 3}),
        CorpusEntry("gray_scott", 3, {"regime": "maze", "resolution": 16, "steps": 3, "dt_save": 5.0}),
    )
    first = generate_corpus(tmp_path, entries, progress=False)
    assert set(first) == {"fitzhugh_nagumo", "gray_scott_maze"} and all(v > 0 for v in first.values())
    before = (tmp_path / "gray_scott_maze" / "data" / "train" / "gray_scott_maze.hdf5").stat().st_mtime_ns
    again = generate_corpus(tmp_path, entries, progress=False)
    assert again == {"fitzhugh_nagumo": 0.0, "gray_scott_maze": 0.0}
    assert (tmp_path / "gray_scott_maze" / "data" / "train" / "gray_scott_maze.hdf5").stat().st_mtime_ns == before
    (tmp_path / "fitzhugh_nagumo" / "stats.yaml").unlink()  # stopped while writing: its files are made again
    third = generate_corpus(tmp_path, entries, progress=False)
    assert third["fitzhugh_nagumo"] > 0 and third["gray_scott_maze"] == 0.0
    assert (tmp_path / "fitzhugh_nagumo" / "stats.yaml").exists()


def test_a_recipe_picks_its_corpus_entries():
    bundled, transfer = Recipe.load("bundled"), Recipe.load("bundled_transfer")
    assert corpus_entries(bundled) == BUNDLED_CORPUS
    assert [e for e in corpus_entries(transfer)] == [e for e in BUNDLED_CORPUS if e.system != "euler"]
    bundled.only = ["fitzhugh_nagumo", "euler_riemann"]
    assert [e.name() for e in corpus_entries(bundled)] == ["fitzhugh_nagumo", "euler_riemann"]
    rows = {r["name"]: r for r in corpus_table(transfer)}
    assert len(rows) == len(BUNDLED_CORPUS) and not rows["euler_low_mach"]["used"] and rows["fitzhugh_nagumo"]["used"]
    assert rows["gray_scott_3d_spots"]["dims"] == 3 and rows["gray_scott_3d_spots"]["resolution"] == 32
    assert "resolution" not in rows["gray_scott_maze"]["params"] and rows["gray_scott_maze"]["params"]["regime"] == "maze"
