"""Build objects from config nodes with ``_target_``, the one place seqclf calls Hydra's instantiate."""

from __future__ import annotations

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from seqclf import migrate
from seqclf.errors import SeqclfError


def instantiate(node: DictConfig, **kwargs):
    """``hydra.utils.instantiate``, letting seqclf's own errors through as they are (Hydra wraps
    whatever a constructor raises), so they reach the user as one paragraph. A class an earlier
    seqclf named otherwise is built under its name of today (seqclf.migrate)."""
    if node.get("_target_") != migrate.target(node.get("_target_")):
        node = node.copy()
        node._target_ = migrate.target(node._target_)
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, SeqclfError):
            raise e.__cause__ from None
        raise


def instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every ``_target_`` node of a config group such as ``callbacks`` or ``logger``."""
    return [instantiate(node) for node in (group or {}).values() if node and "_target_" in node]
