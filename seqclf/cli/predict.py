"""`seqclf-predict ckpt_path=... text="A review."` or `... input=reviews.txt output=predictions.jsonl`.

Arguments look like Hydra overrides but are read verbatim after the first ``=``, so a review may
hold commas, quotes and ``=`` (Hydra's grammar would read a comma as a sweep). Everything about the
model and its input comes from the checkpoint, so a checkpoint copied alone anywhere works.
Each input line gives one JSON line: {"text": ..., "label": <class name>, "probs": {<class>: <probability>,
...}} (multi-label data: "labels", the list of labels over the model's threshold, instead of "label"), with
the input's other JSON Lines fields (an id, say) passed through; an empty line gives label and probs null
and an "error". top_k=N keeps the N most probable classes in "probs". trace=true adds "words" (those the
model reads) and "trace" (each class's probability after each word) and draws the first few texts,
coloured by the running probability, to trace_plot=FILE (default: beside output=, <output>.trace.png).
A tagger's checkpoint gives "words" and "tags" (one per word) instead; JSON Lines may give a "tokens"
list of words instead of a "text", and get "tags" for exactly those words.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from seqclf import cli
from seqclf.atomic import write_atomic
from seqclf.errors import SeqclfError

USAGE = (
    'usage: seqclf-predict ckpt_path=PATH (text="A review." [text=...] | input=FILE) '
    "[output=FILE|-] [top_k=N] [trace=true [trace_plot=FILE]] [batch_size=256] [device=auto|cpu|cuda]"
)
KEYS = ("ckpt_path", "text", "input", "output", "top_k", "trace", "trace_plot", "batch_size", "device")
TRACE_PLOT_TEXTS = 4  # the texts a trace picture shows
# The file types matplotlib's savefig writes (by the name's ending).
PICTURE_TYPES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp", ".svgz", ".pgf")


def parse(argv: list[str]) -> dict:
    args = cli.key_values(argv, KEYS, "text")
    if "ckpt_path" not in args:
        raise SeqclfError("ckpt_path=... is required (a .ckpt file written by seqclf-train).")
    if bool(args["text"]) == ("input" in args):
        raise SeqclfError('give either text="..." (one or more) or input=FILE (one review per line, or JSON Lines).')
    if any(not t.strip() for t in args["text"]):
        raise SeqclfError('text= is empty; give the review to classify, e.g. text="A wonderful, moving film."')
    if "output" in args:
        output = Path(args["output"]).expanduser().resolve()
        for key in ("ckpt_path", "input"):
            if key in args and Path(args[key]).expanduser().resolve() == output:
                raise SeqclfError(
                    f"output={args['output']} is the {key} file itself, which writing would destroy; "
                    "give another file name, e.g. output=predictions.jsonl."
                )
    return args


def text_lines(text: str) -> list[str]:
    """The lines of ``text`` as a user sees them: what ``\n`` (or ``\r\n``) ends, nothing else. Python's
    str.splitlines() also splits at form feeds, U+2028 and other separators a review may hold, and the
    outputs would no longer line up with the inputs."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line.removesuffix("\r") for line in lines]


def read_input(path: str) -> list[dict]:
    """One review per line, or JSON Lines with a "text" field (.jsonl), whose other fields (an id,
    say) are passed through. Every line gives one record, a blank one too (an empty review), so
    the predictions line up with the input."""
    file = Path(path).expanduser()
    if file.exists() and not file.is_dir() and not file.is_file():  # a pipe would block the read
        raise SeqclfError(f"input={path} is not a regular file (a named pipe, a socket or a device); give a file.")
    try:
        lines = text_lines(file.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise SeqclfError(f"input={path} does not exist; give a text file with one review per line.") from None
    except IsADirectoryError:
        raise SeqclfError(f"input={path} is a folder; give a text file with one review per line.") from None
    except UnicodeDecodeError as e:
        raise SeqclfError(f"input={path} is not valid UTF-8 text ({e.reason} at byte {e.start}).") from None
    except OSError as e:
        raise SeqclfError(f"input={path} cannot be read: {e.strerror}.") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if file.suffix != ".jsonl" or not line.strip():
            records.append({"text": line if file.suffix != ".jsonl" else ""})
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not (isinstance(record.get("text"), str) or _is_words(record)):
                raise ValueError("no 'text' string or 'tokens' list of words")
        except ValueError as e:
            raise SeqclfError(
                f"input={path}, line {number}: not a JSON object with a 'text' field (or a 'tokens' list) ({e})."
            ) from None
        records.append(record)
    if not any(_content(r) for r in records):
        raise SeqclfError(f"input={path} holds no reviews; put one review per line.")
    return records


def _is_words(record: dict) -> bool:
    words = record.get("tokens")
    return isinstance(words, list) and all(isinstance(w, str) for w in words)


def _content(record: dict):
    """What a record gives the model: its list of words (a tagger's ``tokens``), else its text, if not blank."""
    if "text" not in record and _is_words(record):
        return record["tokens"] or None
    return record["text"] if record["text"].strip() else None


def predict(
    ckpt_path: str,
    texts: list,
    batch_size: int = 256,
    device: str = "auto",
    top_k: int | None = None,
    trace: bool = False,
) -> list[dict]:
    """One record per text: the text, ``label`` (the class name; multi-label: ``labels``, every label
    over the model's threshold) and ``probs`` (class name -> probability, the ``top_k`` most probable
    when set), with ``trace``: ``words`` and ``trace`` too. A tagger's: ``tags`` (and ``words`` for
    a text), for a text or a list of words (``tokens``)."""
    predictions, _ = _predict(ckpt_path, texts, batch_size, device, top_k, trace)
    return [{"text" if isinstance(t, str) else "tokens": t, **p} for t, p in zip(texts, predictions, strict=True)]


def _predict(ckpt_path: str, texts: list, batch_size: int, device: str, top_k: int | None, trace: bool):
    """``predict``'s outputs without the inputs, and the checkpoint's task (seqclf.tasks)."""
    from seqclf import tasks
    from seqclf.api import load

    model = load(ckpt_path, device, command="seqclf-predict")
    task = tasks.TASKS[model.task]
    if trace and not hasattr(model, "trace"):
        raise SeqclfError(f"trace=true is a classifier's reading trace; this checkpoint is {task.noun}'s.")
    if any(not isinstance(t, str) for t in texts) and not getattr(model, "reads_words", False):
        raise SeqclfError(f"a 'tokens' list of words is a tagger's input; give {task.noun} each text as 'text'.")
    predictions = model.predict(texts, batch_size, top_k)
    if trace:
        try:
            traced = model.trace(texts, batch_size)
        except SeqclfError as e:
            raise SeqclfError(f"trace=true: {str(e).removeprefix('trace(): ')}") from None
        predictions = [{**p, **t} for p, t in zip(predictions, traced, strict=True)]
    return predictions, task


def _positive(args: dict, key: str, default: int | None) -> int | None:
    if key not in args:
        return default
    try:
        value = int(args[key])
    except ValueError:
        value = 0
    if value < 1:
        raise SeqclfError(f"{key}={args[key]} must be a positive integer.")
    return value


@cli.key_value_command(USAGE, __doc__)
def main(argv: list[str]) -> None:
    try:
        args = parse(argv)
        records = [{"text": t} for t in args["text"]] or read_input(args["input"])
        batch_size, top_k = _positive(args, "batch_size", 256), _positive(args, "top_k", None)
        if args.get("device", "auto") not in ("auto", "cpu", "cuda"):
            raise SeqclfError(f"device={args['device']} is not valid; choose auto, cpu or cuda.")
        trace = _flag(args, "trace")
        picture = _trace_plot_path(args) if trace else None  # checked before the work, drawn after the output
        items = [item for r in records if (item := _content(r)) is not None]
        predictions, task = _predict(args["ckpt_path"], items, batch_size, args.get("device", "auto"), top_k, trace)
        predictions = iter(predictions)
        empty = task.empty_prediction
        rows = [{**r, **(next(predictions) if _content(r) is not None else empty)} for r in records]
    except SeqclfError as e:
        cli.fail("seqclf-predict", f"{e}\n{USAGE}")
    emit("seqclf-predict", rows, args.get("output", "-"), "predictions")
    if picture is not None:  # the predictions are out whatever happens to the picture
        try:
            _draw_trace([r for r in rows if "trace" in r][:TRACE_PLOT_TEXTS], picture)
        except SeqclfError as e:
            cli.fail("seqclf-predict", str(e))


def _encodes(stream, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def emit(command: str, rows: list[dict], output: str, what: str) -> None:
    """``rows`` as JSON Lines on stdout (``output`` ``-``) or in the file ``output``, written whole;
    a file that cannot be written is one paragraph from ``command``."""
    if output in ("-", "/dev/stdout"):
        # a terminal or pipe that cannot show a character (PYTHONIOENCODING=ascii, say) gets JSON's escape
        ascii_only = not _encodes(sys.stdout, "".join(json.dumps(row, ensure_ascii=False) for row in rows))
        sys.stdout.write("".join(json.dumps(row, ensure_ascii=ascii_only) + "\n" for row in rows))
        return
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    try:
        write_output(Path(output).expanduser(), lines.encode("utf-8"))
    except OSError as e:
        cli.fail(command, f"output={output} cannot be written: {e.strerror}; give another path.")
    print(f"{len(rows)} {what} written to {output}", file=sys.stderr)


def _flag(args: dict, key: str) -> bool:
    value = args.get(key, "false").lower()
    if value not in ("true", "false"):
        raise SeqclfError(f"{key}={args[key]} is not valid; choose true or false.")
    return value == "true"


def _trace_plot_path(args: dict) -> Path | None:
    """Where the trace picture goes: trace_plot=, else beside output= (none when printing to stdout)."""
    if "trace_plot" in args:
        path = Path(args["trace_plot"]).expanduser()
        if path.suffix.lower() not in PICTURE_TYPES:
            raise SeqclfError(
                f"trace_plot={args['trace_plot']} does not end in a picture type matplotlib writes; give a file ending "
                f"in {', '.join(PICTURE_TYPES[:4])} (or {', '.join(PICTURE_TYPES[4:])})."
            )
        return path
    if args.get("output", "-") in ("-", "/dev/stdout"):
        return None
    output = Path(args["output"]).expanduser()
    return output.with_name(output.stem + ".trace.png")


def _draw_trace(rows: list[dict], path: Path) -> None:
    """The first texts' reading trace, coloured by the probability of the class the model gave the first
    one (binary: the second class, IMDB's pos)."""
    from seqclf.runs import plots

    if not rows:
        return
    names = list(rows[0]["trace"][-1]) if rows[0]["trace"] else []
    label = names[-1] if len(names) == 2 else rows[0].get("label") or (names[0] if names else "")
    try:
        plots.reading_trace(rows, label, path)
    except OSError as e:
        raise SeqclfError(f"trace_plot={path} cannot be written: {e.strerror}; give another path.") from None
    print(f"reading trace of {len(rows)} text(s) drawn to {path}", file=sys.stderr)


def write_output(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all, through a link to its target (the link stays a
    link); a target that is not a regular file (a device, a pipe) is written to as it is."""
    target = path.resolve() if path.is_symlink() else path
    if target.exists() and not target.is_file():
        with target.open("wb") as f:
            f.write(data)
        return
    write_atomic(target, lambda f: f.write(data))


if __name__ == "__main__":
    main()
