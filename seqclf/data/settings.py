"""The checks of the data settings (data.*): torch-free, so that seqclf-train refuses a bad value
before torch and Lightning load (seqclf.cli.config.validate); each DataModule runs the same checks when
it is built. A check sees only the settings it is given: one left out is the DataModule's default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from seqclf.data import sources
from seqclf.errors import ConfigError, check_positive_int

# data.max_len=auto: this percentile of the training texts' word counts, at most AUTO_CAP words (the
# cost of a step grows with the length; the thread plan, made before the data is read, assumes the cap).
AUTO_LENGTH, AUTO_PERCENTILE, AUTO_CAP = "auto", 95, 400
PAD_SIDES = ("pre", "post")  # where padding and truncation apply, as in Keras
# How a raw text becomes words: the classifier's rule (``tokenize``: lowercase, punctuation and symbols
# dropped), or at whitespace, lowercased (tagging data whose punctuation marks are words with tags).
WORD_SPLITS = ("tokenize", "whitespace")
# What a tagging DataModule may derive its tags from (seqclf.tasks.tagging.data.DERIVED holds how).
DERIVED_TAGS = ("punctuation",)


def plain(value):
    """Hydra's ListConfig as a list (hparams and checkpoints hold plain data only)."""
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else value


def column_name(key: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}={value!r} must be a name (a non-empty string).")
    return value


def column_names(value) -> tuple[str, ...]:
    """data.text_column: one column, or a list of them (joined with a space)."""
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
    if not names:
        raise ConfigError("data.text_column=[] names no column; give one (text) or a list ([title,description]).")
    return tuple(column_name("data.text_column", name) for name in names)


def planned_length(max_len) -> int:
    """The words per text to plan for before the data is read: data.max_len, or AUTO_CAP for auto."""
    return AUTO_CAP if max_len == AUTO_LENGTH else int(max_len)


def check_side(name: str, value: str) -> str:
    """``value`` if it is a side to pad or truncate at (``name``: padding or truncation)."""
    if value not in PAD_SIDES:
        raise ConfigError(f"data.{name}={value!r} is not valid; choose one of {', '.join(PAD_SIDES)}.")
    return value


def check_text(s: Mapping) -> None:
    """A text-classification DataModule's settings (seqclf.data.TextDataModule's arguments)."""
    max_len = s.get("max_len", 32)
    if max_len != AUTO_LENGTH and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1):
        raise ConfigError(
            f"data.max_len={max_len!r} must be a positive number of words, or auto (the {AUTO_PERCENTILE}th "
            f"percentile of the training texts' word counts, at most {AUTO_CAP})."
        )
    for key in ("batch_size", "eval_batch_size", "steps_per_execution"):
        if key in s:
            check_positive_int(f"data.{key}", s[key])
    vocab_size = s.get("vocab_size", 3)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 3:
        raise ConfigError(
            f"data.vocab_size={vocab_size!r} must be an integer of at least 3 (2 special tokens + 1 word)."
        )
    if s.get("group_column") is not None:
        column_name("data.group_column", s["group_column"])
    if "cache_dir" in s and not str(s["cache_dir"]).strip():
        raise ConfigError(
            "data.cache_dir is empty (SEQCLF_CACHE_DIR=''?), which would put the encoded-data cache in the folder "
            "you start in; give a folder, or unset SEQCLF_CACHE_DIR for ~/.cache/seqclf."
        )
    fraction = s.get("val_fraction", 0.1)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"data.val_fraction={fraction!r} must lie strictly between 0 and 1 (e.g. 0.1).")
    num_proc = s.get("num_proc")
    if num_proc is not None and (isinstance(num_proc, bool) or not isinstance(num_proc, int) or num_proc < 1):
        raise ConfigError(
            f"data.num_proc={num_proc!r} must be a positive number of processes, or null for one per usable core."
        )
    column_names(s.get("text_column", "text"))
    column_name("data.label_column", s.get("label_column", "label"))
    label_names = plain(s.get("label_names"))
    if label_names is not None and (
        isinstance(label_names, str)
        or not isinstance(label_names, Sequence)
        or not all(isinstance(n, (str, int)) for n in label_names)
    ):
        raise ConfigError(f"data.label_names={label_names!r} must be null or a list of class names (e.g. [a,b]).")
    for key in ("train_split", "val_split", "test_split"):
        if key in s:
            column_name(f"data.{key}", s[key])
    splits = tuple(s.get("splits", sources.SPLITS))
    if not splits or not set(splits) <= set(sources.SPLITS):
        raise ConfigError(f"data.splits={list(splits)} must name some of {', '.join(sources.SPLITS)}.")
    if "train" not in splits and (s.get("tokenizer") is None or s.get("labels") is None):
        raise ConfigError(
            "data.splits without train needs a tokenizer and labels (both fitted on train), e.g. a checkpoint's."
        )
    if s.get("val_split") == "test" and "test" not in splits:
        raise ConfigError("data.val_split=test needs the test split in data.splits.")
    for key in ("padding", "truncation"):
        if key in s:
            check_side(key, s[key])
    limit = s.get("limit_train_batches")
    if limit is not None and not (
        (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1)
        or (isinstance(limit, float) and 0.0 < limit <= 1.0)
    ):
        raise ConfigError(
            f"trainer.limit_train_batches={limit!r} must be a number of batches (an integer >= 1) or a share of "
            "them (a float in (0, 1]), e.g. trainer.limit_train_batches=200 or 0.1."
        )


def _fixed_length(s: Mapping, task: str) -> None:
    if s.get("max_len") == AUTO_LENGTH:
        raise ConfigError(
            f"data.max_len=auto fits a classifier's length to its texts; {task} needs a number of words (e.g. "
            "data.max_len=64)."
        )


def check_tagging(s: Mapping) -> None:
    """A tagging DataModule's own settings (seqclf.tasks.tagging.data.TaggingDataModule's arguments)."""
    _fixed_length(s, "tagging")
    column_name("data.tokens_column", s.get("tokens_column", "tokens"))
    column_name("data.tags_column", s.get("tags_column", "tags"))
    derive = s.get("derive")
    if derive is not None and derive not in DERIVED_TAGS:
        raise ConfigError(f"data.derive={derive!r} is not valid; choose null or {', '.join(DERIVED_TAGS)}.")
    word_split = s.get("word_split", "whitespace")
    if word_split not in WORD_SPLITS:
        raise ConfigError(f"data.word_split={word_split!r} is not valid; choose one of {', '.join(WORD_SPLITS)}.")


def check_generation(s: Mapping) -> None:
    """A generation DataModule's own settings (seqclf.tasks.generate.data.GenerationDataModule's arguments)."""
    _fixed_length(s, "generation")
    padding = s.get("padding", "post")
    if padding != "post" and not s.get("tokenizer"):  # a given tokenizer brings its own sides
        raise ConfigError(
            f"data.padding={padding!r}: a generator's texts start at their first step (padding at the end); "
            "use data.padding=post."
        )
    if s.get("unlabelled_split") is not None:
        column_name("data.unlabelled_split", s["unlabelled_split"])


def check_tagging_data(s: Mapping) -> None:
    """A TaggingDataModule's settings: its own, then the text settings it shares (under their tagging names)."""
    check_tagging(s)
    renamed = {"tokens_column": "text_column", "tags_column": "label_column", "tag_names": "label_names"}
    check_text({renamed.get(key, key): value for key, value in s.items() if key not in ("text_column", "label_column")})


def check_generation_data(s: Mapping) -> None:
    """A GenerationDataModule's settings: its own, then the text settings it shares."""
    check_generation(s)
    check_text(s)
