"""`seqclf-export ckpt_path=... [format=onnx|torchscript] [output=FILE]`: a classifier's or tagger's
network, token ids in and the task's scores out, as ONNX (run it with onnxruntime, from any
language it serves) or TorchScript (torch.jit.load, no seqclf needed), with a JSON manifest beside
it: the tokenizer's vocabulary, length, sides and rules, the class names, the threshold. The
exported file is checked against PyTorch on batches of several sizes and lengths before it is kept.
For ONNX, onnx_predict.py (onnxruntime and numpy only) is copied beside it too:
`python onnx_predict.py best.json "A wonderful film."` prints what seqclf-predict prints.
Default output: the checkpoint's name with .onnx (or .pt), e.g. checkpoints/best.onnx and best.json.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from seqclf import cli
from seqclf.atomic import write_atomic
from seqclf.errors import SeqclfError

USAGE = "usage: seqclf-export ckpt_path=PATH [format=onnx|torchscript] [output=FILE]"
KEYS = ("ckpt_path", "format", "output")
STANDALONE = Path(__file__).resolve().parent.parent / "export" / "onnx_predict.py"


def parse(argv: list[str]) -> dict:
    from seqclf.export import FORMATS, manifest_path

    args = cli.key_values(argv, KEYS, "")
    args.pop("")
    if "ckpt_path" not in args:
        raise SeqclfError("ckpt_path=... is required (a .ckpt file written by seqclf-train).")
    fmt = args.setdefault("format", "onnx")
    if fmt not in FORMATS:
        raise SeqclfError(f"format={fmt} is not one seqclf exports; choose {' or '.join(FORMATS)}.")
    ckpt = Path(args["ckpt_path"]).expanduser()
    output = Path(args.get("output") or ckpt.with_suffix(FORMATS[fmt])).expanduser()
    written = {"output": output, "its manifest": manifest_path(output)}
    if fmt == "onnx":
        written["the prediction script"] = output.parent / STANDALONE.name
    for what, path in written.items():
        if path.resolve() == ckpt.resolve():
            raise SeqclfError(
                f"output={output} would write {what} over the checkpoint itself; give another file name, e.g. "
                f"output={ckpt.with_suffix(FORMATS[fmt])}."
            )
    if manifest_path(output) == output:
        raise SeqclfError(f"output={output} ends in .json, the name of its manifest; name it {output.stem}"
                          f"{FORMATS[fmt]}.")  # fmt: skip
    if output.is_dir():
        raise SeqclfError(f"output={output} is a folder; give a file name, e.g. output={output / ckpt.stem}"
                          f"{FORMATS[fmt]}.")  # fmt: skip
    args["output"] = output
    return args


@cli.key_value_command(USAGE, __doc__)
def main(argv: list[str]) -> None:
    try:
        args = parse(argv)
        from seqclf.api import load
        from seqclf.atomic import check_writable
        from seqclf.export import TOLERANCE, export

        check_writable(args["output"].parent, f"output={args['output']}")
        model = load(args["ckpt_path"], "cpu")
        done = export(model, args["format"], args["output"], source=str(args["ckpt_path"]))
        if args["format"] == "onnx":
            script = done.model.parent / STANDALONE.name
            write_atomic(script, lambda f: f.write(STANDALONE.read_bytes()))
            shutil.copymode(STANDALONE, script)
    except SeqclfError as e:
        cli.fail("seqclf-export", f"{e}\n{USAGE}")
    except OSError as e:
        cli.fail("seqclf-export", f"output={args['output']} cannot be written: {e.strerror or e}.")
    size = done.model.stat().st_size / 1e6
    print(f"seqclf-export: wrote {done.model} ({size:.1f} MB) and {done.manifest}")
    print(
        f"  checked against PyTorch: {done.scores_checked} scores on batches of {min(done.batch_sizes)} to "
        f"{max(done.batch_sizes)} texts, largest difference "
        f"{done.max_difference:.1g} (accepted up to {TOLERANCE:g})"
    )
    if args["format"] == "onnx":
        print(f'  predict without torch: python {done.model.parent / STANDALONE.name} {done.manifest} "A text."')
    else:
        print(f"  load it with torch.jit.load('{done.model}'): token ids (batch, time) int64 in, scores out")


if __name__ == "__main__":
    main()
