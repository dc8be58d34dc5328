"""The private Lightning attributes seqclf relies on (seqclf.lightning.private) exist in the installed
release: a Lightning upgrade that drops one fails here, naming it."""

import lightning

from seqclf.lightning import private


def test_the_private_lightning_attributes_seqclf_uses_are_there():
    gone = private.missing()
    assert not gone, (
        f"Lightning {lightning.__version__} lacks {', '.join(gone)}, which seqclf.lightning.private uses; "
        "adapt that module or pin lightning to a tested release (constraints.txt)."
    )
    assert ".".join(lightning.__version__.split(".")[:2]) in private.TESTED


def test_a_checkpoint_the_run_removes_is_named_in_the_log(tmp_path, caplog):
    """Lightning removes a checkpoint that leaves the best top-k without a word; the run says so."""
    import logging
    from types import SimpleNamespace

    from seqclf.lightning.checkpointing import RunCheckpoint

    old = tmp_path / "epoch_001.ckpt"
    old.write_bytes(b"weights")
    removed = []
    trainer = SimpleNamespace(is_global_zero=True, strategy=SimpleNamespace(remove_checkpoint=removed.append))
    with caplog.at_level(logging.INFO, logger="seqclf.lightning.checkpointing"):
        RunCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max", save_top_k=1)._remove_checkpoint(
            trainer, str(old)
        )
    assert removed == [str(old)]
    assert f"Removing {old}: no longer among the best 1 by val/acc" in caplog.text
