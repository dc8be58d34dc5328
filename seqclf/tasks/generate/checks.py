"""The generator's own settings' checks (the monitored metric, an encoder that reads in order), torch-free."""

from __future__ import annotations

from seqclf.errors import ConfigError
from seqclf.models.checks import check_cutoffs
from seqclf.tasks.monitor import check_monitor

# The validation metrics a generator logs, which ``monitor`` may name.
GENERATION_MONITORED = ("val/perplexity", "val/loss")


def check_generation(monitor, encoder) -> None:
    """Raise a ConfigError for a monitored metric a generator does not log, or a recurrent encoder
    that reads backwards too (a writer cannot read the words it has not written yet; any other
    encoder says whether it reads in order when it is built)."""
    check_monitor(monitor, GENERATION_MONITORED, "generation")
    if (encoder or {}).get("bidirectional"):
        raise ConfigError(
            "model.encoder.bidirectional=true: a generator writes left to right and cannot read the words to come; "
            "use model.encoder.bidirectional=false."
        )


def check_model(model, cfg) -> None:
    """The generator's own model.* settings of a composed config (seqclf.tasks.check_model)."""
    check_generation(model.get("monitor", cfg.monitor), model.get("encoder"))
    check_cutoffs(model.get("softmax_cutoffs"), cfg.data.vocab_size)
