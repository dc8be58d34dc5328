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
