"""The public names of DESIGN.md resolve, and stay what they are after every submodule is imported.

A submodule named like a lazily exported function (``matching/rank.py`` beside
``matching.rank``) would replace the function with the module once imported anywhere.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import analysis
import composer
import matching

PACKAGES = (analysis, matching, composer)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_exports_survive_importing_every_submodule(package):
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)
    for name in package.__all__:
        value = getattr(package, name)
        assert not inspect.ismodule(value), f"{package.__name__}.{name} is a module, not the exported object"


def test_design_api_names():
    assert callable(analysis.analyze_video) and callable(analysis.analyze_track)
    assert callable(matching.rank) and inspect.isclass(matching.Library) and inspect.isclass(matching.Match)
    assert callable(composer.compose) and callable(composer.score_video) and callable(composer.score_videos)
