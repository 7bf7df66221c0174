"""A user's own family: its recipe (given or derived from the env), where it is defined,
and the command line that reaches it."""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import replace
from importlib.metadata import EntryPoint

import pytest

from meta_rl.cli import main
from meta_rl.envs import Feature, get_family, make_family
from meta_rl.envs.family import ENTRY_POINT_GROUP
from meta_rl.errors import CheckpointError, ConfigError, FamilyError
from meta_rl.mapping.checkpoint import TrainedMapping
from meta_rl.training.auto import auto_recipe, profile_env
from meta_rl.training.config import QUICK, TrainConfig, settings_key
from meta_rl.training.health import WeakBaseError, check_base
from meta_rl.training.recipes import RECIPES, automatic_notes, recipe_for
from meta_rl.training.trainer import train

from .conftest import TINY_TRAIN

MC_FEATURES = [
    Feature(name="force", default=0.001, low=0.0008, high=0.0015),
    Feature(name="gravity", default=0.0025, low=0.002, high=0.003),
]
FAMILY_MODULE = """
from meta_rl.envs import Feature, make_family

make_family(
    "{name}",
    "Pendulum-v1",
    [Feature(name="g", default=10.0, low=8.0, high=12.0)],
    apply={{"g": "g"}},
)
"""


@pytest.fixture(autouse=True)
def _registry_restored():
    """Each test's families leave with it (a worker process of a later test imports every
    registered family's module)."""
    import gymnasium as gym

    from meta_rl.envs import family as registry

    families, ids = dict(registry._FAMILIES), set(gym.registry)
    yield
    registry._FAMILIES.clear()
    registry._FAMILIES.update(families)
    for key in set(gym.registry) - ids:
        del gym.registry[key]


def _discrete_mountain_car(**kwargs):
    return make_family(
        "OwnDiscreteMC",
        "MountainCar-v0",
        MC_FEATURES,
        apply={"force": "force", "gravity": "gravity"},
        **kwargs,
    )


def test_a_family_without_a_recipe_gets_one_derived_from_its_env():
    family = _discrete_mountain_car()
    recipe = recipe_for(family.name)
    assert recipe.objective == "rl" and recipe.finetune_algo == "ppo"  # discrete actions
    assert recipe.ppo["gamma"] == pytest.approx(1 - 5 / 200)  # its time limit of 200
    assert recipe.sac is None and recipe.pi == (64, 64)
    notes = automatic_notes(family.name)
    assert notes[0].startswith("automatic recipe for OwnDiscreteMC")
    assert any("horizon 200 (its time limit)" in line for line in notes)
    # Box actions: td3, a SAC fine-tune, and td3's own discount from the horizon.
    box = make_family(
        "OwnContinuousMC",
        "MountainCarContinuous-v0",
        [Feature(name="power", default=0.0015, low=0.001, high=0.002)],
        apply={"power": "power"},
    )
    recipe = recipe_for(box.name)
    assert (recipe.objective, recipe.finetune_algo) == ("td3", "sac")
    # Its converted actor starts where the prediction acts (a gain per action dimension).
    assert recipe.off_policy_finetune("sac")["head_gain"] is None
    gamma = round(1 - 5 / 999, 4)
    assert recipe.off_policy == {"gamma": gamma} and recipe.sac == {"gamma": gamma}
    config = TrainConfig(family=box.name, workdir="unused")
    assert config.objective == "td3" and config.td3.gamma == gamma
    # Built-in families keep theirs, and say nothing.
    assert recipe_for("Pendulum") is RECIPES["pendulum"] and automatic_notes("Pendulum") == ()


def test_the_automatic_recipe_reads_the_horizon_and_flags_scales():
    family = _discrete_mountain_car()
    profile = profile_env(family, steps=300)
    assert profile == profile_env(family, steps=300)  # seeded
    assert (profile.obs_dim, profile.action_kind, profile.action_dim) == (2, "discrete", 3)
    # Without a time limit the random episodes' length is the horizon; past the limits
    # of scale the notes say what to do.
    loose = replace(profile, time_limit=None, episode_lengths=(40, 60))
    recipe, notes = auto_recipe(family, loose)
    assert recipe.ppo["gamma"] == 0.95 and recipe.ppo["n_steps"] == 128
    assert "horizon 50 (random episodes' mean length)" in " ".join(notes)
    assert not any(line.startswith("warning") for line in notes)
    wild = replace(profile, obs_spread=250.0, reward_scale=1e4, obs_dim=40)
    recipe, notes = auto_recipe(family, wild)
    assert recipe.pi == (128, 128)
    warnings = [line for line in notes if line.startswith("warning")]
    assert len(warnings) == 2 and all("rescale" in line for line in warnings)


def test_a_recipe_given_to_the_family_or_the_run_is_the_one_used():
    own = replace(RECIPES["pendulum"], objective="distill", base_steps=1234)
    family = _discrete_mountain_car(recipe=replace(own, objective="rl"))
    assert recipe_for(family.name).base_steps == 1234
    assert automatic_notes(family.name) == ()
    config = TrainConfig(family=family.name, recipe=own, workdir="unused")
    assert config.objective == "distill" and config.resolved_recipe().base_steps == 1234
    plain = TrainConfig(family=family.name, workdir="unused")
    assert plain.objective == "rl"
    assert settings_key(config) != settings_key(plain)  # the recipe is part of the run
    with pytest.raises(FamilyError, match="Recipe"):
        _discrete_mountain_car(recipe={"objective": "rl"})
    with pytest.raises(ConfigError, match="Recipe"):
        TrainConfig(family=family.name, recipe="fast", workdir="unused")
    _discrete_mountain_car()  # registered again without a recipe, for the other tests


def test_a_recipes_activation_is_the_predicted_policys_and_part_of_the_key():
    from dataclasses import asdict

    from meta_rl.training.recipes import recipe_from_json
    from meta_rl.training.trainer import Trainer

    tanh = RECIPES["pendulum"]
    relu = replace(tanh, activation="relu")
    config = TrainConfig(family="Pendulum", recipe=relu, workdir="unused")
    assert Trainer(config).policy_arch().activation == "relu"
    assert settings_key(config) != settings_key(replace(config, recipe=tanh))
    # The default is left out of the key: a run given this recipe before the field existed
    # had this key, and keeps it.
    assert settings_key(replace(config, recipe=tanh))[:12] == "affec915064c"
    assert recipe_from_json(asdict(relu)).activation == "relu"
    assert recipe_from_json({k: v for k, v in asdict(tanh).items() if k != "activation"}) == tanh
    with pytest.raises(CheckpointError, match="activation"):
        recipe_from_json({**asdict(tanh), "activation": "sigmoid"})


def test_keys_of_runs_without_a_recipe_are_unchanged():
    # The key of the benchmark's seed-0 Pendulum td3 run (the shipped mapping's settings),
    # computed before a run could be given a recipe: cached runs stay valid.
    from meta_rl.benchmarks.benchmark import BenchmarkConfig

    benchmark = BenchmarkConfig(family="Pendulum", train={"objective": "td3"})
    config = benchmark.train_config("interpolation", 0)
    assert settings_key(config)[:12] == "858d8d31d11b"
    # A setting added since keeps the key at its default, and changes it otherwise.
    harder = replace(config, td3=replace(config.td3, hard_share=0.5))
    assert settings_key(harder)[:12] != "858d8d31d11b"
    anchored = replace(config, td3=replace(config.td3, bc_coef=0.4))
    assert settings_key(anchored)[:12] != "858d8d31d11b"


def test_a_checkpoint_names_the_module_that_defines_its_family(tmp_path, monkeypatch):
    module = tmp_path / "own_families.py"
    module.write_text(textwrap.dedent(FAMILY_MODULE.format(name="OwnGravityPendulum")))
    monkeypatch.syspath_prepend(str(tmp_path))
    import own_families  # noqa: F401  (registers the family)

    family = get_family("OwnGravityPendulum")
    assert family.module == "own_families"
    config = TrainConfig(
        **{**TINY_TRAIN, "family": family.name}, objective="distill", workdir=tmp_path / "runs"
    )
    trained, log = train(config)
    assert log["recipe_notes"][0].startswith("automatic recipe for OwnGravityPendulum")
    path = trained.save(tmp_path / "own.safetensors")
    assert TrainedMapping.load(path).family_name == "OwnGravityPendulum"
    # Where the module is not imported, loading says which one to import.
    from meta_rl.envs import family as registry

    monkeypatch.delitem(registry._FAMILIES, "owngravitypendulum")
    with pytest.raises(CheckpointError, match="defined in the module own_families"):
        TrainedMapping.load(path)
    # The command line imports it with --module (the current folder searched).
    monkeypatch.delitem(sys.modules, "own_families")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    status = main(["evaluate", str(path), "--module", "own_families", "--episodes", "1", "--json"])
    assert status == 0
    assert main(["families", "--module", "no_such_module_here"]) == 2


def test_a_family_made_in_a_script_has_no_module_and_loading_says_so(tmp_path, monkeypatch):
    family = make_family(
        "OwnScriptPendulum",
        "Pendulum-v1",
        [Feature(name="g", default=10.0, low=8.0, high=12.0)],
        apply={"g": "g"},
        module="__main__",
    )
    assert family.module is None
    config = TrainConfig(
        **{**TINY_TRAIN, "family": family.name}, objective="distill", workdir=tmp_path / "runs"
    )
    path = train(config)[0].save(tmp_path / "script.safetensors")
    from meta_rl.envs import family as registry

    monkeypatch.delitem(registry._FAMILIES, "ownscriptpendulum")
    with pytest.raises(CheckpointError, match="made in a script"):
        TrainedMapping.load(path)


def test_an_installed_package_provides_a_family_through_an_entry_point(tmp_path, monkeypatch):
    (tmp_path / "own_plugin.py").write_text(
        textwrap.dedent(FAMILY_MODULE.format(name="OwnPluginPendulum"))
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = EntryPoint(name="OwnPluginPendulum", value="own_plugin", group=ENTRY_POINT_GROUP)
    broken = EntryPoint(name="OwnBroken", value="no_such_plugin", group=ENTRY_POINT_GROUP)

    def entry_points(group):
        return [entry, broken] if group == ENTRY_POINT_GROUP else []

    monkeypatch.setattr("importlib.metadata.entry_points", entry_points)
    assert get_family("ownpluginpendulum").module == "own_plugin"
    with pytest.raises(FamilyError, match="OwnBroken: its entry point no_such_plugin"):
        get_family("OwnBroken")
    with pytest.raises(FamilyError, match="--module NAME"):
        get_family("NoSuchFamilyAnywhere")


def test_families_lists_a_module_given_on_the_command_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "own_listed.py").write_text(
        textwrap.dedent(FAMILY_MODULE.format(name="OwnListedPendulum"))
    )
    monkeypatch.chdir(tmp_path)
    assert main(["families", "--module", "own_listed", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "OwnListedPendulum" in json.dumps(listed)


def test_a_base_no_better_than_random_stops_the_run_with_what_to_try(tmp_path, monkeypatch):
    family = _discrete_mountain_car()  # -1 per step until the flag: random and base at -200
    settings = {**TINY_TRAIN, "family": family.name, "objective": "distill"}
    config = TrainConfig(**{**settings, "keep_going": False}, workdir=tmp_path / "runs")
    with pytest.raises(WeakBaseError, match="no better than random") as err:
        train(config)
    for advice in ("denser reward", "without experts", "larger budget", "--keep-going"):
        assert advice in str(err.value)
    # Asked to go on, it trains, and the summary flags a mapping that is the base. The
    # checks' episodes are reported apart: a check of a billion steps counts in no budget.
    from meta_rl.training import trainer as trainer_module

    def costly_check(*args, **kwargs):
        return replace(check_base(*args, **kwargs), env_steps=10**9)

    monkeypatch.setattr(trainer_module, "check_base", costly_check)
    trained, log = train(replace(config, keep_going=True))
    summary = log["summary"]
    assert summary["random_val_return"] == summary["base_val_return"] == -200.0
    assert summary["mapping_beats_base"] is False
    assert log["base_check"]["weak"] is True
    assert trained.info["check_env_steps"] > 10**9
    assert trained.info["env_steps"] < 10**9


def test_a_weak_base_under_an_objective_without_experts_is_said_and_training_goes_on(
    tmp_path, caplog
):
    from meta_rl.objectives.on_policy import RLConfig

    family = _discrete_mountain_car()
    rl = RLConfig(iterations=2, tasks_per_iteration=2, n_steps=64, eval_every=1)
    config = TrainConfig(
        **{**TINY_TRAIN, "family": family.name, "keep_going": False},
        objective="rl",
        rl=rl,
        workdir=tmp_path / "runs",
    )
    with caplog.at_level("WARNING", logger="meta_rl"):
        _, log = train(config)
    assert log["base_check"]["weak"] is True
    assert "learns through the mapping from any start" in caplog.text
    assert "does not beat the base" in caplog.text


def test_the_summary_of_a_run_is_in_its_checkpoint_and_log(tiny_mapping):
    _, trained, log, _ = tiny_mapping
    summary = trained.info["summary"]
    assert set(summary) >= {"random_val_return", "base_val_return", "mapping_val_return"}
    assert summary["mapping_val_return"] == trained.info["val_return"]
    assert "base_check" in log


def test_a_quick_budget_shrinks_every_phase_left_at_its_default():
    quick = TrainConfig(family="Pendulum", budget="quick", rounds=6, workdir="unused")
    assert quick.budget_scale == QUICK["budget_scale"] and quick.rounds == 6  # given: kept
    assert (quick.steps_per_round, quick.states_per_task) == (250, 500)
    assert quick.n_train == 12 and quick.resolved_recipe().base_steps == 50_000
    assert quick.rl.iterations == 50 and quick.td3.iterations == 12
    assert quick.td3.warmup_iterations == 2 and quick.sacd.iterations == 12
    full = TrainConfig(family="Pendulum", workdir="unused")
    assert full.td3.iterations == 40 and full.resolved_recipe().base_steps == 200_000
    assert settings_key(quick) != settings_key(full)
    with pytest.raises(ConfigError, match="budget must be one of"):
        TrainConfig(family="Pendulum", budget="fast", workdir="unused")
    from meta_rl.cli import build_parser, train_config

    args = build_parser().parse_args(
        ["train", "Pendulum", "--budget", "quick", "--td3-iterations", "5"]
    )
    config = train_config(args)
    assert config.budget == "quick" and config.td3.iterations == 5 and config.rounds == 3


@pytest.mark.slow
def test_own_env_example_trains_and_adapts(tmp_path):
    import subprocess

    from .test_examples import EXAMPLES

    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "own_env.py"), "--budget", "quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "automatic recipe for Thruster" in proc.stderr
    assert "zero-shot" in proc.stdout and "fine-tuned" in proc.stdout
    assert (tmp_path / "thruster-adapted.zip").exists()
