"""Every shipped config file composes and instantiates."""

from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from conftest import compose_train
from omegaconf import OmegaConf

from seqclf import CONF_DIR
from seqclf.cli.config import load_config, validate
from seqclf.cli.instantiate import instantiate_all
from seqclf.data import TextDataModule
from seqclf.tasks.classify.module import SeqClassifier

OPTIONS = sorted(
    (p.parent.name, p.stem) for p in Path(CONF_DIR).glob("*/*.yaml")
)  # (group, option) for every file in a config group


# Presets in the global package, and a few of the values each one sets.
GLOBAL = {
    "experiment": {
        "lecture": {
            "data.max_len": 32,
            "data.val_split": "test",
            "model.encoder.cell": "lstm",
            "trainer.max_epochs": 10,
        },
        "long_reviews": {"data.max_len": 200, "data.val_split": "train", "model.encoder.hidden_size": 32},
        "own_data": {
            "data.max_len": "auto",
            "data.truncation": "post",
            "model.encoder._target_": "seqclf.models.bag.BagEncoder",
            "monitor": "val/f1_macro",
        },
        "tuned32": {
            "data.max_len": 32,
            "model.encoder.bidirectional": True,
            "model.pooling": "max",
            "data.vocab_size": 40000,
        },
        "punctuation": {
            "data.derive": "punctuation",
            "model._target_": "seqclf.tasks.tagging.module.SeqTagger",
            "monitor": "val/f1",
        },
        "pretrain32": {"data.unlabelled_split": "unsupervised", "data.truncation": "pre", "data.max_len": 32},
        "finetune32": {
            "model.encoder.embed_dim": 64,
            "model.encoder.hidden_size": 128,
            "model.encoder.bidirectional": False,
        },
        "pretrain200": {"data.max_len": 200, "data.truncation": "pre", "model.softmax_cutoffs": [1000, 5000]},
        "finetune200": {"data.max_len": 200, "model.encoder.embed_dim": 64, "model.encoder.hidden_size": 128},
        "writer": {
            "model._target_": "seqclf.tasks.generate.module.SeqGenerator",
            "data.vocab_size": 5000,
            "data.max_len": 40,
        },
    },
    "task": {
        "classify": {"model._target_": "seqclf.tasks.classify.module.SeqClassifier", "monitor": "val/acc"},
        "tagging": {"data._target_": "seqclf.tasks.tagging.data.TaggingDataModule", "data.tags_column": "ner_tags"},
        "generate": {"data._target_": "seqclf.tasks.generate.data.GenerationDataModule", "monitor": "val/perplexity"},
    },
    "debug": {
        "default": {"trainer.accelerator": "cpu", "trainer.limit_train_batches": 4, "model.encoder.hidden_size": 32},
        "tiny": {"trainer.limit_train_batches": 4, "model.encoder.hidden_size": 4, "model.encoder.embed_dim": 4},
        "overfit": {"trainer.max_epochs": 50, "data.reshuffle": False},
        "fast_dev_run": {"trainer.fast_dev_run": True},
        "profile": {"trainer.profiler": "simple"},
    },
    "hparams_search": {
        "imdb32": {"hydra.sweeper.direction": "maximize", "data.max_len": 32, "test": False},
        "own_data": {"hydra.sweeper.direction": "maximize", "data.max_len": "auto", "monitor": "val/f1_macro"},
    },
}


def test_eval_config_composes_and_requires_a_checkpoint(tmp_path):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("eval", return_hydra_config=True)
    assert OmegaConf.is_missing(cfg, "ckpt_path") and cfg.data.path is None and cfg.task_name == "eval"


def test_options_were_found():
    groups = {g for g, _ in OPTIONS}
    assert {"data", "model", "trainer", "callbacks", "logger", "paths", "hydra"} <= groups


def test_default_config_matches_the_lecture(tmp_path):
    cfg = compose_train(tmp_path, tiny=False)
    assert (
        cfg.model.encoder.cell == "lstm" and cfg.model.encoder.embed_dim == 16 and cfg.model.encoder.hidden_size == 32
    )
    assert cfg.data.vocab_size == 10000 and cfg.data.max_len == 32 and cfg.data.batch_size == 32
    assert (cfg.data.padding, cfg.data.truncation) == ("pre", "pre")
    assert cfg.trainer.max_epochs == 10 and cfg.seed == 42 and cfg.model.optimizer.lr == 1e-3
    assert cfg.trainer.accelerator == "auto" and cfg.data.path is None
    validate(cfg)


@pytest.mark.parametrize("group, option", OPTIONS)
def test_every_config_file_composes_and_instantiates(tmp_path, group, option):
    overrides = [f"{group}={option}"]
    cfg = compose_train(tmp_path, overrides, tiny=False)
    for key in cfg:  # every interpolation resolves
        if key != "hydra" and OmegaConf.is_config(cfg[key]):
            OmegaConf.to_container(cfg[key], resolve=True)
    if group in GLOBAL:  # global packages: they set values across groups
        validate(cfg)
        for key, value in GLOBAL[group][option].items():
            assert OmegaConf.select(cfg, key) == value, key
        return
    node = cfg[group]
    if group == "data":
        assert isinstance(hydra.utils.instantiate(node), TextDataModule)
    elif group == "model":
        model = hydra.utils.instantiate(node, vocab_size=100)
        assert isinstance(model, SeqClassifier)
        assert model.hparams.encoder == OmegaConf.to_container(node.encoder, resolve=True)
    elif group in ("callbacks", "logger"):
        assert len(instantiate_all(node)) == len(node or {})
    elif group == "trainer":
        if node.accelerator == "gpu" and not torch.cuda.is_available():  # gpu, gpu_bf16
            pytest.skip("trainer=gpu needs a CUDA device")
        assert isinstance(hydra.utils.instantiate(node), L.Trainer)
    elif group == "paths":
        assert Path(node.output_dir).is_absolute() and node.cache_dir
    elif group == "hydra":
        # Microseconds in the run folder: runs started in the same second do not collide.
        first, second = cfg.hydra.run.dir, compose_train(tmp_path, overrides, tiny=False).hydra.run.dir
        assert first.startswith(cfg.paths.log_dir) and first != second


def test_a_profiler_can_be_chosen(tmp_path):
    from lightning.pytorch.profilers import PassThroughProfiler, SimpleProfiler

    trainer = hydra.utils.instantiate(compose_train(tmp_path).trainer, logger=False)
    assert isinstance(trainer.profiler, PassThroughProfiler)  # Lightning's default: nothing profiled
    trainer = hydra.utils.instantiate(compose_train(tmp_path, ["trainer.profiler=simple"]).trainer, logger=False)
    assert isinstance(trainer.profiler, SimpleProfiler)


def test_help_explains_the_main_options_and_lists_the_groups(tmp_path):
    from conftest import run_seqclf

    result = run_seqclf("train", "--help", cwd=tmp_path, timeout=120)
    assert result.returncode == 0
    for text in ("== Main options ==", "model=rnn|lstm|gru", "hparams_search: imdb32", "debug: default", "lr: 0.001"):
        assert text in result.stdout, text


def test_help_lists_the_config_groups_and_options_that_hydra_finds(capsys):
    """seqclf's --help lists the groups from conf/'s folders; Hydra's own listing (slow) must agree."""
    from hydra.core.global_hydra import GlobalHydra

    from seqclf import CONF_DIR, cli

    with hydra.initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        expected = "".join(
            f"{group}: {', '.join(sorted(loader.get_group_options(group)))}\n"
            for group in sorted(loader.list_groups(""))
            if group != "hydra" and loader.get_group_options(group)
        )
    cli.print_help(CONF_DIR, "train", ["model=gru", "--help"], "seqclf-train")
    shown = capsys.readouterr().out
    assert f"== Configuration groups ==\n{expected}" in shown
    assert "cell: gru" in shown  # the config composed with the command's overrides


@pytest.mark.parametrize(
    "monitor, mode, direction", [("val/acc", "max", "maximize"), ("val/f1_macro", "max", "maximize"),
                                 ("val/loss", "min", "minimize")]
)  # fmt: skip
def test_the_monitored_metric_is_one_setting_for_checkpoints_early_stopping_and_search(monitor, mode, direction):
    cfg = load_config(["hparams_search=imdb32", f"monitor={monitor}"])
    assert (
        cfg.callbacks.model_checkpoint.monitor == cfg.callbacks.early_stopping.monitor == cfg.model.monitor == monitor
    )
    assert cfg.callbacks.model_checkpoint.mode == cfg.callbacks.early_stopping.mode == mode
    assert cfg.hydra.sweeper.direction == direction and cfg.optimized_metric == f"{monitor}_best"


def test_a_search_study_is_named_by_what_it_optimises(tmp_path):
    """Searches of other data, columns or metrics keep studies of their own; the same search, one study."""
    from seqclf.cli import resolvers

    resolvers.register()

    def study(*overrides):
        cfg = load_config(["hparams_search=imdb32", *overrides], output_dir=tmp_path)
        return OmegaConf.select(cfg, "hydra.sweeper.study_name")

    imdb = study("data.path=/data/imdb")
    assert imdb.startswith("imdb32-val_acc-") and imdb == study("data.path=/data/imdb")
    assert len({imdb, study("data.path=/data/quips"), study("data.path=/data/imdb", "monitor=val/f1_macro"),
                study("data.path=/data/imdb", "data.text_column=review")}) == 4  # fmt: skip
    assert study("data.path=/data/imdb", "monitor=val/f1_macro").startswith("imdb32-val_f1_macro-")
