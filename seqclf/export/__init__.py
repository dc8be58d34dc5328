"""seqclf-export's work: a trained model's network with its readout (token ids in, the task's scores
out: a classifier's class probabilities, a tagger's tag probabilities at every word) as ONNX or
TorchScript, with dynamic batch and length axes; a JSON file beside it with what a caller needs to
turn text into ids and scores into labels (the tokenizer's vocabulary, length, sides and rules, the
class names, the threshold); and a check, before anything is kept, that the exported file gives
PyTorch's scores on batches of other shapes than the one it was traced with.

The ONNX file comes from torch's TorchScript-based exporter (``dynamo=False``): with torch 2.13 and
onnxscript 0.7 the dynamo exporter fixed the time axis of max pooling and could not export packed
bidirectional cells (docs/export.md)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqclf.atomic import write_atomic, write_json
from seqclf.data.text import SPECIALS, UNK_ID, tokenize_rules
from seqclf.errors import SeqclfError

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
MANIFEST = "seqclf.Export/1"
OPSET = 17
# The largest difference between the exported file's scores (probabilities) and PyTorch's that the
# check accepts: float32 kernels that add in another order differ by about 1e-7.
TOLERANCE = 1e-5
INSTALL = "pip install 'seqclf[export]'"


@dataclass(frozen=True)
class Exported:
    model: Path  # the network file
    manifest: Path  # the JSON beside it
    max_difference: float  # the largest |exported - PyTorch| score over the checked batches
    scores_checked: int  # how many scores were compared
    batch_sizes: tuple[int, ...]  # the checked batches' sizes (texts)


def manifest_path(model_file: Path) -> Path:
    """The JSON that goes with an exported network: ``best.onnx`` -> ``best.json``."""
    return model_file.with_suffix(".json")


def export(model: Any, fmt: str, output: str | Path, source: str = "") -> Exported:
    """Write ``model`` (what seqclf.load returns) as ``fmt`` (onnx or torchscript) to ``output``, and
    its manifest beside it, after checking the written file against PyTorch. ``source``: the
    checkpoint it came from, recorded in the manifest."""
    if fmt not in FORMATS:
        raise SeqclfError(f"format={fmt} is not one seqclf exports; choose {' or '.join(FORMATS)}.")
    if not hasattr(model, "scores"):
        raise SeqclfError(
            f"{source or 'this checkpoint'} is a generator's (task={model.task}); seqclf-export writes classifiers "
            "and taggers, whose network maps a batch of token ids to their scores in one call. A generator writes "
            "word by word, carrying the cells' state and sampling settings between calls (seqclf-generate), which "
            "one exported call does not hold; use seqclf.load(...).generate(...) or seqclf-generate."
        )
    if fmt == "onnx":
        _require("onnx")
        _require("onnxruntime")
    network, fields = model.scores()
    network = network.cpu().eval()
    traced_with, checks = _batches(model.tokenizer)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript-based exporter's notice that dynamo is the default now, and the tracer's on
        # Python values read from tensors: the check below is what says the file is right.
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            _write_onnx(network, traced_with, buffer, fields["output"], fields["output_shape"])
        else:
            _write_torchscript(network, traced_with, buffer)
        data = buffer.getvalue()
        run = _onnx_runner(data) if fmt == "onnx" else _torchscript_runner(data)
        difference, compared = 0.0, 0
        for tokens in checks:
            expected, got = network(tokens), run(tokens)
            if got.shape != expected.shape:
                raise SeqclfError(
                    f"the exported network gave scores of shape {tuple(got.shape)} for a batch of shape "
                    f"{tuple(tokens.shape)}, where PyTorch gives {tuple(expected.shape)}; nothing was written."
                )
            difference = max(difference, float((got - expected).abs().max()))
            compared += expected.numel()
    if not difference <= TOLERANCE:
        raise SeqclfError(
            f"the exported network's scores differ from PyTorch's by up to {difference:.2g} (more than "
            f"{TOLERANCE:g}) on the check batches; nothing was written. Its encoder may read a number from a "
            "tensor (a length, a count) that tracing fixed for the traced batch: compute it with tensor ops."
        )
    output = Path(output)
    write_atomic(output, lambda f: f.write(data))
    manifest = manifest_path(output)
    write_json(manifest, _manifest(model, fields, fmt, output, source, difference))
    return Exported(output, manifest, difference, compared, tuple(len(tokens) for tokens in checks))


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise SeqclfError(f"format=onnx needs the {module} package, which is not installed; {INSTALL}.") from None


def _batches(tokenizer) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A batch to trace with and batches of other sizes and lengths to check with: word ids with
    each row's padding on the tokenizer's side (the traced batch's rows of several lengths, so that
    nothing about one length is fixed), and the out-of-vocabulary id among them."""
    generator = torch.Generator().manual_seed(0)
    n, vocab, pre = tokenizer.max_len, tokenizer.vocab_size, tokenizer.padding == "pre"

    def batch(rows: int, length: int) -> torch.Tensor:
        low = UNK_ID if vocab > len(SPECIALS) else 0
        ids = torch.randint(low, max(vocab, low + 1), (rows, length), generator=generator)
        for i in range(rows):
            words = 1 + (i * 7919) % length  # one word up to all of them
            if pre:
                ids[i, : length - words] = 0
            else:
                ids[i, words:] = 0
        return ids

    return batch(5, max(n, 2)), [batch(1, 1), batch(3, max(n, 2)), batch(8, n + 7), batch(2, max(1, n // 2))]


def _write_onnx(network: torch.nn.Module, tokens: torch.Tensor, f: io.BytesIO, output: str, shape: list[str]) -> None:
    axes = {"tokens": {0: "batch", 1: "time"}, output: {i: a for i, a in enumerate(shape) if a in ("batch", "time")}}
    torch.onnx.export(
        network,
        (tokens,),
        f,
        input_names=["tokens"],
        output_names=[output],
        dynamic_axes=axes,
        opset_version=OPSET,
        dynamo=False,
    )


def _write_torchscript(network: torch.nn.Module, tokens: torch.Tensor, f: io.BytesIO) -> None:
    torch.jit.save(torch.jit.trace(network, (tokens,), check_trace=False), f)


def _onnx_runner(data: bytes):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # a check: no threads to share
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return lambda tokens: torch.from_numpy(session.run(None, {"tokens": tokens.numpy()})[0])


def _torchscript_runner(data: bytes):
    loaded = torch.jit.load(io.BytesIO(data))
    return lambda tokens: loaded(tokens)


def _manifest(model: Any, fields: dict, fmt: str, output: Path, source: str, difference: float) -> dict:
    import seqclf
    from seqclf.tasks import TASKS

    tokenizer = model.tokenizer
    return {
        "format": MANIFEST,
        "task": model.task,
        "model": output.name,
        "model_format": fmt,
        "opset": OPSET if fmt == "onnx" else None,
        "input": "tokens",
        "input_shape": ["batch", "time"],
        "input_dtype": "int64",
        **fields,
        "empty": TASKS[model.task].empty_prediction,  # the record for a blank text, as seqclf-predict's
        "checked_max_difference": difference,
        "tokenizer": {
            "max_len": tokenizer.max_len,
            "padding": tokenizer.padding,
            "truncation": tokenizer.truncation,
            "pad_id": 0,
            "unk_id": UNK_ID,
            "split": tokenizer.split,
            "rules": tokenize_rules(tokenizer.split),
            "vocab": tokenizer.vocab,
        },
        "source": source,
        "seqclf_version": seqclf.__version__,
        "torch_version": torch.__version__,
    }
