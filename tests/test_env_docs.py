"""Family env docstrings: Gymnasium's sections, and feature tables generated from the task
space (so they cannot drift from it)."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from meta_rl.envs import Feature, TaskEnv, TaskSpace, make_family
from meta_rl.envs.family import document_task_features
from meta_rl.envs.registry import BUILTINS

from .conftest import Drift, constructor_keywords

SECTIONS = [
    "## Description",
    "## Action Space",
    "## Observation Space",
    "## Rewards",
    "## Starting State",
    "## Episode End",
    "## Arguments",
    "## Task features",
    "## Version History",
]
EXTRAS = {"box2d": "Box2D", "mujoco": "mujoco"}


def _env_class(builtin) -> type:
    if builtin.extra:
        pytest.importorskip(EXTRAS[builtin.extra])
    module = importlib.import_module(f"meta_rl.envs.{builtin.module}")
    return getattr(module, builtin.cls)


def _section(doc: str, heading: str) -> str:
    """The text under ``heading``, up to the next heading."""
    start = doc.index(heading + "\n") + len(heading)
    following = doc.find("\n## ", start)
    return doc[start : following if following >= 0 else len(doc)]


def _tables(text: str) -> list[str]:
    """The Markdown tables in ``text`` (runs of lines that start with ``|``)."""
    return [run.rstrip("\n") for run in re.findall(r"(?m)(?:^\|.*\n?)+", text)]


BUILTIN_IDS = [b.name for b in BUILTINS]


@pytest.mark.parametrize("builtin", BUILTINS, ids=BUILTIN_IDS)
def test_docstring_has_gymnasiums_sections_in_order(builtin):
    doc = inspect.getdoc(_env_class(builtin))
    headings = [line for line in doc.splitlines() if line.startswith("## ")]
    assert headings == SECTIONS
    assert not doc.splitlines()[0].startswith("#"), "a one-line summary comes first"


@pytest.mark.parametrize("builtin", BUILTINS, ids=BUILTIN_IDS)
def test_docstring_table_is_the_task_spaces(builtin):
    cls = _env_class(builtin)
    doc = inspect.getdoc(cls)
    assert _tables(_section(doc, "## Task features")) == [cls.task_space.table()]
    assert _tables(doc) == [cls.task_space.table()], "no other (hand-made) feature table"


@pytest.mark.parametrize("builtin", BUILTINS, ids=BUILTIN_IDS)
def test_docstring_arguments_name_every_keyword_of_the_base_env(builtin):
    cls = _env_class(builtin)
    base = next(b for b in cls.__bases__ if b is not TaskEnv)
    arguments = _section(inspect.getdoc(cls), "## Arguments")
    # MujocoEnv's model_path and observation_space are set by HalfCheetahEnv itself.
    internal = {"model_path", "observation_space"}
    for keyword in ["task", *constructor_keywords(base)]:
        if keyword not in internal:
            assert f"`{keyword}`" in arguments, f"{builtin.name}'s Arguments omit {keyword!r}"
    for keyword in cls.refused_kwargs:
        assert f"`{keyword}`" in arguments and "refused" in arguments


def test_custom_family_docstring_gets_the_table():
    family = make_family(
        "DocumentedDrift",
        Drift,
        [Feature(name="rate", default=0.0, low=-0.5, high=0.5, doc="drift per step")],
        apply=lambda env, task: setattr(env, "rate", task["rate"]),
        summary="A drifting point.",
        register=False,
    )
    doc = inspect.getdoc(family.env_cls)
    assert doc.splitlines()[0] == "A drifting point."
    assert _tables(_section(doc, "## Task features")) == [family.task_space.table()]


def test_table_lists_every_field_of_every_feature():
    space = TaskSpace(
        [
            Feature(name="m", default=1.0, low=0.5, high=2.0, unit="kg", scale="log", doc="mass"),
            Feature(name="w", default=0.0, low=-1.0, high=1.0, kind="reward", doc="a | b"),
        ]
    )
    header, rule, *rows = space.table().splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "name",
        "default",
        "bounds",
        "unit",
        "kind",
        "scale",
        "doc",
    ]
    assert set(rule) == {"|", "-"}
    assert len({len(line) for line in [header, rule, *rows]}) == 1, "padded columns"
    assert [c.strip() for c in rows[0].strip("|").split("|")] == [
        "`m`",
        "1",
        "[0.5, 2]",
        "kg",
        "dynamics",
        "log",
        "mass",
    ]
    assert rows[1].rstrip().endswith(r"a \| b |"), "a | in a doc does not split the cell"


class TestDocumentTaskFeatures:
    SPACE = TaskSpace([Feature(name="x", default=0.0, low=-1.0, high=1.0)])

    def test_table_goes_at_the_end_of_the_section(self):
        doc = """Summary.

        ## Task features

        Prose about the features.

        ## Version History

        * v0: first.
        """
        out = document_task_features(doc, self.SPACE)
        assert out == (
            "Summary.\n\n## Task features\n\nProse about the features.\n\n"
            f"{self.SPACE.table()}\n\n## Version History\n\n* v0: first."
        )
        assert document_task_features(out, self.SPACE) == out, "idempotent"

    def test_section_is_made_before_the_version_history(self):
        out = document_task_features("Summary.\n\n## Version History\n\n* v0", self.SPACE)
        assert out == (
            f"Summary.\n\n## Task features\n\n{self.SPACE.table()}\n\n## Version History\n\n* v0"
        )

    def test_section_is_made_at_the_end_without_a_history(self):
        out = document_task_features("Summary.", self.SPACE)
        assert out == f"Summary.\n\n## Task features\n\n{self.SPACE.table()}"

    def test_subclass_docstring_follows_its_task_space(self):
        class Env(TaskEnv, Drift):
            """A subclass.

            ## Task features

            Hand-written prose only.
            """

            task_space = self.SPACE

            def _apply_task(self, task):
                self.rate = task["x"]

        assert inspect.getdoc(Env).endswith(self.SPACE.table())
