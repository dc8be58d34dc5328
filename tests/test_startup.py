"""Commands load only what they use: --help, a mistyped setting and a bad value answer before torch loads, and
seqclf-predict and seqclf-report run without Lightning (docs/performance.md, "Start-up")."""

import subprocess
import sys
import textwrap

import pytest


def loaded_after(command: str) -> set[str]:
    """Which of torch, lightning and lightning_utilities (0.1 s of imports on its own) a fresh
    interpreter has imported after ``command`` ran."""
    code = textwrap.dedent(f"""
        import sys
        try:
            {command}
        except SystemExit:
            pass
        finally:
            print("LOADED:" + " ".join(m for m in ("torch", "lightning", "lightning_utilities") if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("LOADED:")]
    return set(line.removeprefix("LOADED:").split())


@pytest.mark.parametrize("args", [["--help"], ["trainer.max_epoch=3"], ["model=lstmm"]])
def test_help_and_a_mistyped_setting_answer_before_torch_loads(args):
    command = f"sys.argv = ['seqclf-train', *{args!r}]; from seqclf.cli.train import console; console()"
    assert loaded_after(command) == set()


@pytest.mark.parametrize(
    "args, says",
    [
        (["optimizer.lr=-1"], "optimizer.lr=-1 must be a number >= 0"),
        (["model.encoder.cell=lstmx"], "model.encoder.cell='lstmx' is not a known cell type"),
        (["data.max_len=0"], "data.max_len=0 must be a positive number of words, or auto"),
        (["task=tagging", "data.derive=x"], "data.derive='x' is not valid"),
        (["task=generate", "data.padding=pre"], "a generator's texts start at their first step"),
        (["task=generate", "model.softmax_cutoffs=[0]"], "model.softmax_cutoffs=[0] must be null"),
        (["threads=0"], "threads=0 must be 'auto' or a positive integer"),
    ],
)
def test_a_bad_value_is_refused_before_torch_loads(args, says):
    command = f"sys.argv = ['seqclf-train', *{args!r}]; from seqclf.cli.train import console; console()"
    code = textwrap.dedent(f"""
        import sys
        try:
            {command}
        except SystemExit as e:
            print("EXIT:", e.code, "torch" in sys.modules or "lightning_utilities" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "EXIT: 2 False" in done.stdout and says in done.stderr, done.stdout + done.stderr


def test_predict_and_report_run_without_lightning(tmp_path, imdb_dir):
    from conftest import compose_train

    from seqclf.cli.train import train

    cfg = compose_train(tmp_path, [f"data.path={imdb_dir}"])
    train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    argv = ["seqclf-predict", f"ckpt_path={ckpt}", "text=a fine film"]
    predict = f"sys.argv = {argv!r}; from seqclf.cli.predict import main; main()"
    assert loaded_after(predict) == {"torch"}
    report = f"sys.argv = ['seqclf-report', '{tmp_path}']; from seqclf.cli.report import main; main()"
    assert "lightning" not in loaded_after(report)


@pytest.mark.parametrize(
    "module",
    ["train", "evaluate", "vectors", "predict", "generate", "report", "baseline", "export"],
)
def test_a_reader_that_stops_reading_ends_the_command_quietly(module):
    """``seqclf-train --help | head``: the reader goes away before the command writes; the command
    stops with SIGPIPE's status, as Unix tools do (argparse's help, which ignores a failed write,
    with 0), and no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", f"seqclf.cli.{module}", "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    proc.stdout.close()  # before it writes a byte
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) in (0, 141) and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
