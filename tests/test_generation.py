"""Generation (task=generate): a conditional language model on the same cells and engine: its data
(start token per class, end token, unlabelled texts), perplexity, seeded sampling with
seqclf-generate, label agreement with a classifier, samples in TensorBoard, exact resume."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import TINY, make_reviews, run_seqclf, single_and_ddp
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqclf.cli.config import load_config, validate
from seqclf.data.text import IGNORE, WordTokenizer
from seqclf.errors import ConfigError
from seqclf.models import LanguageModel, RecurrentEncoder
from seqclf.tasks.generate.data import END, START, GenerationDataModule, sequences, start_token
from seqclf.tasks.generate.sampling import sample


def test_a_text_becomes_its_class_start_token_its_words_and_the_end_token():
    vocab = ["<pad>", "<unk>", START, END, start_token("neg"), start_token("pos"), "a", "good", "film"]
    tok = WordTokenizer(vocab, max_len=4, padding="post", truncation="post")
    x, y = sequences(tok, [["a", "good", "film"], ["a", "good", "good", "film", "film"]], ["<s:pos>", "<s:neg>"])
    # the short text ends (</s> is its last target); the long one is cut after max_len words, no end token
    assert x.tolist() == [[5, 6, 7, 8], [4, 6, 7, 7]]
    assert y.tolist() == [[6, 7, 8, 3], [6, 7, 7, 8]]
    x, y = sequences(tok, [["good"]], [START])
    assert x.tolist() == [[2, 7, 0, 0]] and y.tolist() == [[7, 3, IGNORE, IGNORE]]
    last = WordTokenizer(vocab, max_len=2, padding="post", truncation="pre")
    x, y = sequences(last, [["a", "good", "film"]], ["<s:pos>"])
    assert x.tolist() == [[5, 7]] and y.tolist() == [[7, 8]]  # the last words


def test_unlabelled_texts_train_with_the_plain_start_token_and_test_never_does(tmp_path):
    root = tmp_path / "imdb"
    (root / "plain_text").mkdir(parents=True)
    for split, rows in (("train", make_reviews(60, 1)), ("test", make_reviews(20, 2)),
                        ("unsupervised", [{**r, "label": -1} for r in make_reviews(40, 3)])):  # fmt: skip
        pq.write_table(pa.Table.from_pylist(rows), root / "plain_text" / f"{split}-00000-of-00001.parquet")
    common = dict(path=str(root), label_names=["neg", "pos"], vocab_size=60, max_len=10, progress=False)
    plain = GenerationDataModule(cache_dir=str(tmp_path / "c1"), **common)
    more = GenerationDataModule(cache_dir=str(tmp_path / "c2"), unlabelled_split="unsupervised", **common)
    for dm in (plain, more):
        dm.prepare_data()
        dm.setup("fit")
    assert len(more.train_set) == len(plain.train_set) + 40 and len(more.test_set) == len(plain.test_set) == 20
    start = more.tokenizer.index[START]
    assert int((more.train_set.x[:, 0] == start).sum()) == 40 and int((plain.train_set.x[:, 0] == start).sum()) == 0
    assert set(more.tokenizer.vocab[2:6]) == {START, END, "<s:neg>", "<s:pos>"}
    assert more.tokenizer.vocab_size <= 60  # the tiny data has fewer words


def test_a_generator_validates_on_the_texts_a_classifier_of_the_same_data_validates_on(tmp_path, imdb_dir):
    """So a classifier started from the generator (model.init_from) validates on texts the generator
    never read, nor was given the class of."""
    from seqclf.data import TextDataModule

    common = dict(path=str(imdb_dir), vocab_size=5000, max_len=200, truncation="post", progress=False)
    clf = TextDataModule(cache_dir=str(tmp_path / "c1"), val_split="train", padding="post", **common)
    gen = GenerationDataModule(cache_dir=str(tmp_path / "c2"), **common)
    texts = {}
    for name, dm, skip in (("clf", clf, 0), ("gen", gen, 1)):
        dm.prepare_data()
        dm.setup("fit")
        vocab = dm.tokenizer.vocab
        texts[name] = [
            tuple(vocab[i] for i in row[skip:] if i > 0 and vocab[i] != END) for row in dm.val_set.x.tolist()
        ]
        assert len(set(texts[name])) > 5
    assert sorted(texts["gen"]) == sorted(texts["clf"])
    starts = [row[0] for row in gen.val_set.x.tolist()]
    assert {gen.tokenizer.vocab[i] for i in starts} == {start_token(name) for name in gen.labels.names}


def test_sampling_is_seeded_and_never_writes_a_banned_token():
    torch.manual_seed(0)
    net = LanguageModel(RecurrentEncoder(12, cell="gru", embed_dim=4, hidden_size=5), 12)
    starts = torch.tensor([4, 4, 5])
    runs = [sample(net, starts, 8, 3, [0, 1, 2, 4, 5], 1.0, None, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert runs[0] == runs[1] and all(len(t) <= 8 for t in runs[0])
    assert not {0, 1, 2, 3, 4, 5} & {i for text in runs[0] for i in text}
    greedy = sample(net, starts, 8, 3, [0, 1, 2, 4, 5], 0.0)
    assert greedy[0] == greedy[1]  # the same start, the most probable word each time


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_generator_trains_samples_and_is_judged(tmp_path, imdb_dir, cli_env):
    done = run_seqclf("train", "task=generate", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/perplexity"] == pytest.approx(np.exp(metrics["test/loss"]), rel=0.05)
    assert 1 < metrics["val/perplexity_best"] < 60 and "train/perplexity" in metrics  # vocabulary of 40 (debug)
    events = EventAccumulator(str(run), size_guidance={"tensors": 0})
    events.Reload()
    assert "samples/text_summary" in events.Tags()["tensors"]  # TensorBoard's text tab
    ckpt = run / "checkpoints" / "last.ckpt"
    args = [f"ckpt_path={ckpt}", "label=pos", "label=0", "n=3", "max_words=12", "seed=5"]
    first = run_seqclf("generate", *args, env=cli_env, cwd=tmp_path)
    again = run_seqclf("generate", *args, env=cli_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert first.stdout == again.stdout and [r["label"] for r in rows] == ["pos"] * 3 + ["neg"] * 3
    assert all(0 < len(r["text"].split()) <= 12 for r in rows) and "[pos] " in first.stderr
    other = run_seqclf("generate", *args[:-1], "seed=6", env=cli_env, cwd=tmp_path)
    assert other.stdout != first.stdout
    wrong = run_seqclf("generate", f"ckpt_path={ckpt}", "label=happy", env=cli_env, cwd=tmp_path)
    assert wrong.returncode == 2 and "label=happy is not a class of this generator; its classes are neg, pos" in (
        wrong.stderr
    )
    # Judged by a classifier of the same classes: each text's class, and the label agreement.
    (tmp_path / "clf").mkdir()
    clf = run_seqclf("train", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path / "clf")
    assert clf.returncode == 0, clf.stderr[-3000:]
    (clf_run,) = (tmp_path / "clf" / "outputs" / "train" / "runs").iterdir()
    out = tmp_path / "reviews.jsonl"
    judged = run_seqclf("generate", *args, f"judge={clf_run / 'checkpoints' / 'last.ckpt'}", f"output={out}",
                        env=cli_env, cwd=tmp_path)  # fmt: skip
    assert judged.returncode == 0, judged.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    agreement = sum(r["judged"] == r["label"] for r in rows) / len(rows)
    assert f"label agreement: {agreement:.3f} (6 texts" in judged.stderr
    not_a_writer = run_seqclf("generate", f"ckpt_path={clf_run / 'checkpoints' / 'last.ckpt'}", env=cli_env,
                              cwd=tmp_path)  # fmt: skip
    assert (
        not_a_writer.returncode == 2
        and "is a classifier's checkpoint (task=classify), which seqclf-generate does not use; use seqclf-predict"
        in not_a_writer.stderr
    )
    # and the other way round: seqclf-predict names the command that writes with a generator
    not_a_classifier = run_seqclf("predict", f"ckpt_path={ckpt}", "text=hi", env=cli_env, cwd=tmp_path)
    assert not_a_classifier.returncode == 2 and "Traceback" not in not_a_classifier.stderr
    assert "is a generator's checkpoint (task=generate), which seqclf-predict does not use; use seqclf-generate" in (
        not_a_classifier.stderr
    )


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_bidirectional_classifier_starts_its_forward_direction_from_a_generator(tmp_path, imdb_dir, cli_env):
    for layers in (1, 2):
        (tmp_path / f"g{layers}").mkdir()
        done = run_seqclf("train", "task=generate", f"data.path={imdb_dir}", *TINY,
                          f"model.encoder.num_layers={layers}", env=cli_env, cwd=tmp_path / f"g{layers}")  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = (next((tmp_path / f"g{n}" / "outputs" / "train" / "runs").iterdir()) / "checkpoints" / "last.ckpt"
                for n in (1, 2))  # fmt: skip
    (tmp_path / "clf").mkdir()
    clf = run_seqclf("train", f"data.path={imdb_dir}", *TINY, f"model.init_from={one}", "optimizer.lr=0",
                     "model.encoder.bidirectional=true", env=cli_env, cwd=tmp_path / "clf")  # fmt: skip
    assert clf.returncode == 0, clf.stderr[-3000:]
    assert "the forward direction; the backward one afresh" in clf.stdout + clf.stderr
    (run,) = (tmp_path / "clf" / "outputs" / "train" / "runs").iterdir()
    g = torch.load(one, weights_only=True)["state_dict"]
    c = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    shared = [k for k in g if k.startswith("net.encoder.")]
    assert shared and all(torch.equal(g[k], c[k]) for k in shared)  # lr 0: as the generator learnt them
    backward = [k for k in c if k.endswith("_reverse")]
    assert backward and all(k.removesuffix("_reverse") in g for k in backward)  # the same shapes, its own start
    assert not any(torch.equal(c[k], g[k.removesuffix("_reverse")]) for k in backward)
    deeper = run_seqclf("train", f"data.path={imdb_dir}", *TINY, f"model.init_from={two}",
                        "model.encoder.num_layers=2", "model.encoder.bidirectional=true", env=cli_env,
                        cwd=tmp_path / "clf")  # fmt: skip
    assert deeper.returncode == 2 and "above the first a bidirectional classifier's layer reads both" in deeper.stderr
    # Gradual unfreezing from the two-layer generator: the head alone, then the top layer, then the bottom one.
    (tmp_path / "gradual").mkdir()
    gradual = run_seqclf("train", f"data.path={imdb_dir}", *TINY, f"model.init_from={two}",
                         "model.encoder.num_layers=2", "callbacks=[default,freeze_pretrained]",
                         "callbacks.freeze_pretrained.gradual=true", "trainer.max_epochs=3",
                         "callbacks.model_checkpoint.save_top_k=-1", env=cli_env, cwd=tmp_path / "gradual")  # fmt: skip
    assert gradual.returncode == 0, gradual.stderr[-3000:]
    (run,) = (tmp_path / "gradual" / "outputs" / "train" / "runs").iterdir()
    start = torch.load(two, weights_only=True)["state_dict"]
    epochs = [torch.load(run / "checkpoints" / f"epoch_00{n}.ckpt", weights_only=True)["state_dict"] for n in (1, 2, 3)]

    def moved(layer: str) -> list[bool]:  # did the layer's weights change in each epoch
        keys = [k for k in start if k.startswith("net.encoder.") and layer in k]
        before = [start, *epochs[:-1]]
        return [not all(torch.equal(a[k], b[k]) for k in keys) for a, b in zip(before, epochs, strict=True)]

    assert moved("_l1") == [False, True, True] and moved("_l0") == [False, False, True]
    assert moved("embedding") == [False, False, False]


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
@pytest.mark.parametrize("softmax", [[], ["model.softmax_cutoffs=[10,20]"]], ids=["full", "adaptive"])
def test_resume_of_a_generator_equals_an_uninterrupted_run(tmp_path, imdb_dir, cli_env, softmax):
    args = ["task=generate", f"data.path={imdb_dir}", *TINY, "trainer.deterministic=true",
            "trainer.limit_train_batches=6", "data.steps_per_execution=4", *softmax]  # fmt: skip
    straight = run_seqclf("train", *args, "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = run_seqclf("train", *args, "trainer.max_epochs=1", env=cli_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    straight_run, run = sorted((tmp_path / "outputs" / "train" / "runs").iterdir())
    resumed = run_seqclf("train", f"resume={run}", "trainer.max_epochs=2", env=cli_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(straight_run / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 12
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
    assert ("net.head.head.weight" in a["state_dict"]) == bool(softmax)  # the adaptive head's own layers
    written = run_seqclf("generate", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "label=neg", "n=2",
                         "max_words=8", env=cli_env, cwd=tmp_path)  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert [json.loads(line)["label"] for line in written.stdout.splitlines()] == ["neg", "neg"]


def test_generation_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="a generator writes left to right"):
        validate(load_config(["task=generate", "model.encoder.bidirectional=true"], tmp_path))
    with pytest.raises(ConfigError, match="monitor='val/acc' is not a validation metric this task logs"):
        validate(load_config(["task=generate", "monitor=val/acc"], tmp_path))
    with pytest.raises(ConfigError, match="data.padding='pre': a generator's texts start at their first step"):
        validate(load_config(["task=generate", "data.padding=pre"], tmp_path))


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_a_classifier_starts_from_a_generators_vocabulary_and_layers(tmp_path, imdb_dir, cli_env):
    done = run_seqclf("train", "task=generate", f"data.path={imdb_dir}", *TINY, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (writer,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    source = writer / "checkpoints" / "last.ckpt"
    (tmp_path / "clf").mkdir()
    # lr 0: the classifier's shared layers stay exactly what the generator learnt
    clf = run_seqclf("train", f"data.path={imdb_dir}", *TINY, f"model.init_from={source}", "optimizer.lr=0",
                     env=cli_env, cwd=tmp_path / "clf")  # fmt: skip
    assert clf.returncode == 0, clf.stderr[-3000:]
    assert "The encoder (embedding and cells) starts from" in clf.stdout + clf.stderr
    (run,) = (tmp_path / "clf" / "outputs" / "train" / "runs").iterdir()
    g = torch.load(source, weights_only=True)
    c = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    shared = [k for k in g["state_dict"] if k.startswith("net.encoder.")]
    assert shared and all(torch.equal(g["state_dict"][k], c["state_dict"][k]) for k in shared)
    assert c["hyper_parameters"]["init_from"] == str(source)
    vocab = json.loads(g["GenerationDataModule"]["tokenizer"])["vocab"]
    assert json.loads((run / "tokenizer.json").read_text())["vocab"] == vocab  # each word keeps its id
    # Refused before any run folder: other sizes, or a checkpoint that is not a generator's.
    for args, says in (
        (["model.encoder.hidden_size=8"], "model.encoder.hidden_size=8 (generator: 4)"),
        (["model.init_from=" + str(run / "checkpoints" / "last.ckpt")], "is a classify checkpoint"),
        (
            ["model.init_from=" + str(tmp_path / "gone.ckpt")],
            f"model.init_from={tmp_path / 'gone.ckpt'} does not exist",
        ),
    ):
        refused = run_seqclf("train", f"data.path={imdb_dir}", *TINY, f"model.init_from={source}", *args,
                             env=cli_env, cwd=tmp_path / "clf")  # fmt: skip
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
    assert len(list((tmp_path / "clf" / "outputs" / "train" / "runs").iterdir())) == 1
    # callbacks=[default,freeze_pretrained]: the output layer alone in the first epoch, then every layer
    (tmp_path / "frozen").mkdir()
    frozen = run_seqclf("train", f"data.path={imdb_dir}", *TINY, f"model.init_from={source}",
                        "callbacks=[default,freeze_pretrained]", "trainer.max_epochs=2",
                        "callbacks.model_checkpoint.save_top_k=-1", env=cli_env, cwd=tmp_path / "frozen")  # fmt: skip
    assert frozen.returncode == 0, frozen.stderr[-3000:]
    (run,) = (tmp_path / "frozen" / "outputs" / "train" / "runs").iterdir()
    first, second = (
        torch.load(run / "checkpoints" / f"epoch_00{n}.ckpt", weights_only=True)["state_dict"] for n in (1, 2)
    )
    assert all(torch.equal(g["state_dict"][k], first[k]) for k in shared)
    assert not any(torch.equal(g["state_dict"][k], second[k]) for k in shared)
    assert not torch.equal(first["net.head.weight"], second["net.head.weight"])
    # The generator moved away: resuming the run needs only its own checkpoint (vocabulary and weights).
    source.rename(tmp_path / "moved.ckpt")
    resumed = run_seqclf("train", f"resume={run}", "trainer.max_epochs=3", env=cli_env, cwd=tmp_path / "frozen")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
@pytest.mark.parametrize("softmax", [[], ["model.softmax_cutoffs=[10,20]"]], ids=["full", "adaptive"])
def test_ddp_on_two_cpu_processes_scores_a_generator_as_one_process(tmp_path, imdb_dir, cli_env, softmax):
    common = ["task=generate", f"data.path={imdb_dir}", *TINY, "data.eval_batch_size=1024",
              "trainer.limit_val_batches=1.0", "trainer.limit_test_batches=1.0", *softmax]  # fmt: skip
    one, two = single_and_ddp(tmp_path, common, cli_env)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m1["global_step"] == m2["global_step"] == 4
    # Each process averages its loss over its own tokens, so the weights are not one process's to the
    # last bit; the perplexity is the whole test split's: the processes' summed token losses and counts
    # give what one process scoring the same checkpoint gives.
    best = two / m2["best_checkpoint"]
    scored = run_seqclf("evaluate", f"ckpt_path={best}", f"data.path={imdb_dir}", "trainer=cpu",
                        "data.eval_batch_size=1024", env=cli_env, cwd=tmp_path)  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-3000:]
    alone = json.loads(best.with_suffix(".test.json").read_text())
    assert m2["test/perplexity"] == pytest.approx(alone["test/perplexity"], rel=1e-5)
    assert abs(m2["test/perplexity"] / m1["test/perplexity"] - 1) < 0.05  # and close to one process's training


def test_an_adaptive_softmax_is_a_distribution_over_the_vocabulary_and_samples_like_the_full_one():
    torch.manual_seed(0)
    full = LanguageModel(RecurrentEncoder(50, cell="lstm", embed_dim=4, hidden_size=16), 50)
    adaptive = LanguageModel(RecurrentEncoder(50, cell="lstm", embed_dim=4, hidden_size=16), 50, [10, 30])
    assert isinstance(adaptive.head, torch.nn.AdaptiveLogSoftmaxWithLoss) and not full.adaptive
    tokens = torch.randint(2, 50, (3, 7))
    target = torch.randint(2, 50, (3, 7))
    target[0, 5:] = IGNORE  # a shorter text: its padding is not scored
    for net in (full, adaptive):
        features = net(tokens)
        assert features.shape == (3, 7, 16)
        log_probs = net.next_word_scores(features).log_softmax(dim=-1)
        # the scores are a distribution over every word, and the loss is the targets' share of it
        probs = net.next_word_scores(features).softmax(dim=-1).sum(dim=-1)
        torch.testing.assert_close(probs, torch.ones(3, 7))
        real = target != IGNORE
        expected = -log_probs[real].gather(-1, target[real].unsqueeze(-1)).sum()
        total, count = net.nll(features, target, IGNORE)
        torch.testing.assert_close(total, expected)
        assert int(count) == int(real.sum()) == 19
        starts = torch.tensor([4, 5])
        runs = [sample(net, starts, 6, 3, [0, 1, 2, 4, 5], 0.8, 5, torch.Generator().manual_seed(2)) for _ in range(2)]
        assert runs[0] == runs[1] and not {0, 1, 2, 3, 4, 5} & {i for text in runs[0] for i in text}
    # the adaptive head's log-probabilities are normalised already: its scores are their own log-softmax
    features = adaptive(tokens)
    torch.testing.assert_close(adaptive.next_word_scores(features).log_softmax(-1), adaptive.next_word_scores(features))


def test_softmax_cutoffs_are_checked_before_any_data_is_read(tmp_path):
    validate(load_config(["task=generate", "model.softmax_cutoffs=[1000,5000]"], tmp_path))
    for value in ("[5000,1000]", "[0,100]", "[1000,10000]", "1000", "[]", "abc"):
        with pytest.raises(ConfigError, match=r"model.softmax_cutoffs=.* must be null \(a full softmax\) or ascending"):
            validate(load_config(["task=generate", f"model.softmax_cutoffs={value}"], tmp_path))


@pytest.mark.parametrize(
    "arg, message",
    [
        ("seed=10000000000000000000", "seed=10000000000000000000 is too large"),
        ("temperature=inf", "temperature=inf must be a finite number >= 0"),
        ("temperature=1e-300", "temperature=1e-300 is below 0.0001"),
        ("temperature=nan", "temperature=nan must be a finite number >= 0"),
    ],
)
def test_sampling_values_torch_would_reject_are_refused_first(arg, message):
    from seqclf.cli import generate
    from seqclf.errors import SeqclfError

    with pytest.raises(SeqclfError, match=message):
        generate.parse(["ckpt_path=x.ckpt", "label=pos", arg])


def test_a_label_of_digits_that_are_not_ascii_is_named_as_no_class():
    from seqclf.errors import SeqclfError
    from seqclf.tasks.generate.inference import Generator

    class Names:
        label_names = ["neg", "pos"]

    with pytest.raises(SeqclfError, match="label=² is not a class of this generator"):
        Generator.label(Names(), "²")
