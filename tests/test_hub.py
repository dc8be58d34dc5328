"""The default data path, `datasets.load_dataset("stanfordnlp/imdb")`, run for real against a
stand-in Hub on 127.0.0.1 (tests/fake_hub.py), and then from the Hugging Face cache offline."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TINY, make_reviews, run_seqclf
from fake_hub import serve


def parquet(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


@pytest.mark.slow  # a longer end-to-end run: pytest -m slow (CI runs both)
def test_training_without_data_path_loads_imdb_from_the_hub_then_from_its_cache_offline(tmp_path, cli_env):
    files = {
        "plain_text/train-00000-of-00001.parquet": parquet(make_reviews(200, seed=1)),
        "plain_text/test-00000-of-00001.parquet": parquet(make_reviews(80, seed=2)),
    }
    server, hub = serve("stanfordnlp/imdb", files)
    env = {k: v for k, v in cli_env.items() if k not in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}", HF_HOME=str(tmp_path / "hf"))
    env.pop("HF_DATASETS_CACHE", None)
    try:
        first = run_seqclf("train", *TINY, env=env, cwd=tmp_path)
    finally:
        server.shutdown()
    assert first.returncode == 0, first.stderr[-3000:]
    downloaded = {path for method, path in hub.log if method == "GET" and "/resolve/" in path}
    assert {p for p in downloaded if p.endswith(".parquet")} == {
        f"/datasets/stanfordnlp/imdb/resolve/{hub.sha}/{name}" for name in files
    }
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert json.loads((run / "status.json").read_text())["status"] == "completed"

    # The Hub is gone; with HF_DATASETS_OFFLINE=1 the dataset comes from the Hugging Face cache.
    # (Another data.max_len, so seqclf's own cache of encoded arrays does not answer first.)
    offline = {**env, "HF_DATASETS_OFFLINE": "1"}
    second = run_seqclf("train", *TINY, "data.max_len=10", env=offline, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(list((tmp_path / "outputs" / "train" / "runs").iterdir())) == 2


def test_an_endpoint_that_accepts_and_never_answers_is_unreachable_within_the_check(monkeypatch):
    """A proxy or captive portal: the TCP connection opens, no HTTP answer comes; the check gives up
    in its own time instead of letting `datasets` retry for minutes."""
    import socket
    import threading

    from seqclf.data import sources

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(4)], daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    reason = sources.hub_unreachable(timeout=0.5)
    assert reason is not None and "accepted a connection but did not answer within 0.5 s" in reason
    server.close()
