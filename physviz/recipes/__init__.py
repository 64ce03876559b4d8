"""Pretraining recipes: the corpus, training, FNO baselines, evaluation, the model card and the transfer experiment.

- ``Recipe.load("bundled")``: a recipe (``physviz/recipes/configs/NAME.yaml``) on the typed config loader.
- ``run_pipeline(recipe, workdir, stages)``: what ``physviz pretrain`` runs; ``STAGES`` in order.
- ``BUNDLED_CORPUS``, ``generate_corpus``: the built-in simulators' pretraining corpus.
- ``evaluate_all``, ``persistence``, ``model_predictor``: skill on held-out trajectories.
- ``train_fno``: the FNO baseline; ``render_card``: MODEL_CARD.md from results.json.
- ``run_transfer``: the transfer experiment; ``evaluate_zero_shot``: the model against persistence on
  physics outside the corpus (``docs/model_card/zero_shot``).

Names load on first use; this layer sits above ``physviz.train`` and below ``physviz.jobs``.
"""
from __future__ import annotations

from physviz._lazy import lazy_attributes

_LAZY = {
    "Recipe": "physviz.recipes.recipe",
    "RecipeError": "physviz.recipes.recipe",
    "TransferSettings": "physviz.recipes.recipe",
    "known_recipes": "physviz.recipes.recipe",
    "STAGES": "physviz.recipes.pipeline",
    "run_pipeline": "physviz.recipes.pipeline",
    "CorpusEntry": "physviz.recipes.corpus",
    "BUNDLED_CORPUS": "physviz.recipes.corpus",
    "generate_corpus": "physviz.recipes.corpus",
    "make_corpus": "physviz.recipes.corpus",
    "Skill": "physviz.recipes.evaluate",
    "evaluate_all": "physviz.recipes.evaluate",
    "persistence": "physviz.recipes.evaluate",
    "model_predictor": "physviz.recipes.evaluate",
    "FNOBaseline": "physviz.recipes.baselines",
    "FNOConfig": "physviz.recipes.baselines",
    "train_fno": "physviz.recipes.baselines",
    "train_fno_baselines": "physviz.recipes.baselines",
    "render_card": "physviz.recipes.card",
    "run_transfer": "physviz.recipes.transfer",
    "evaluate_zero_shot": "physviz.recipes.zero_shot",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes("physviz.recipes", globals(), _LAZY)
