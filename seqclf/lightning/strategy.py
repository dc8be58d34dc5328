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
from lightning.fabric.utilities.seed import reset_seed
from lightning.pytorch.strategies import DDPStrategy

from seqclf.lightning.private import SubprocessScriptLauncher, init_dist_connection

_MARK = "SEQCLF_LOOPBACK_RENDEZVOUS"  # set for the processes this one starts: the store is ours


class LoopbackDDPStrategy(DDPStrategy):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._socket: socket.socket | None = None

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        starts_processes = isinstance(self._launcher, SubprocessScriptLauncher) and not (
            self.cluster_environment.creates_processes_externally  # torchrun, SLURM, or a process it started
        )
        ours = "MASTER_ADDR" not in os.environ or os.environ.get(_MARK) == "1"  # not the user's rendezvous
        if not (starts_processes and self.num_nodes == 1 and ours):
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
        if self.cluster_environment.main_port != port:  # the environment chose its port already: torch's way
            sock.close()
            return
        os.environ[_MARK] = "1"
        self._socket = sock

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
            self.cluster_environment.main_port,
            self.world_size,
            is_master=is_master,
            timeout=self._timeout,
            multi_tenant=True,
            **({"master_listen_fd": self._socket.fileno()} if is_master else {}),
        )
        device = self.root_device if self.root_device.type != "cpu" else None
        init_dist_connection(
            self.cluster_environment, self._process_group_backend, timeout=self._timeout, device_id=device, store=store
        )
