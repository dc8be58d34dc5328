"""DDP whose single-machine rendezvous listens on the loopback interface only.

torch's TCPStore server binds to every interface, whatever ``MASTER_ADDR`` says, so a DDP run on one
machine would accept connections from the network. When seqclf-train starts the processes itself
(one node, no ``MASTER_ADDR`` from the user or a cluster launcher), the first process binds the
store's socket to 127.0.0.1 and hands it to torch; the processes it starts connect to it there.
"""

from __future__ import annotations

import os
import socket

import torch.distributed as dist
from lightning.fabric.utilities.distributed import _init_dist_connection
from lightning.fabric.utilities.seed import reset_seed
from lightning.pytorch.strategies import DDPStrategy

_MARK = "SEQCLF_LOOPBACK_RENDEZVOUS"  # set for the processes this one starts: the store is ours


class LoopbackDDPStrategy(DDPStrategy):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._socket: socket.socket | None = None
        launched_by_us = os.environ.get(_MARK) == "1"
        if "LOCAL_RANK" not in os.environ and ("MASTER_ADDR" not in os.environ or launched_by_us):
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket.bind(("127.0.0.1", 0))
            self._socket.listen()
            os.environ.update(
                {_MARK: "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(self._socket.getsockname()[1])}
            )

    def setup_distributed(self) -> None:
        if os.environ.get(_MARK) != "1" or self.num_nodes != 1:
            return super().setup_distributed()
        # DDPStrategy.setup_distributed, with a store of our own for init_process_group
        reset_seed()
        self.set_world_ranks()
        self._process_group_backend = self._get_process_group_backend()
        is_master = self._socket is not None and self.global_rank == 0
        store = dist.TCPStore(
            "127.0.0.1",
            int(os.environ["MASTER_PORT"]),
            self.world_size,
            is_master=is_master,
            timeout=self._timeout,
            multi_tenant=True,
            **({"master_listen_fd": self._socket.fileno()} if is_master else {}),
        )
        device = self.root_device if self.root_device.type != "cpu" else None
        _init_dist_connection(
            self.cluster_environment, self._process_group_backend, timeout=self._timeout, device_id=device, store=store
        )
