"""The configuration reference, generated from conf/ (each file's comments and defaults); an MkDocs hook."""

from __future__ import annotations

from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parent.parent / "conf"
MARKER = "<!-- configuration reference -->"

# The groups in the order a reader meets them, each with a sentence on what choosing it means.
GROUPS = {
    "task": "What is learnt: a class per text, a tag per word, or texts written for a class.",
    "data": "The dataset: a preset of a Hub dataset's layout, or `data.path=DIR` with any of them.",
    "model": "The network: its encoder (`model.encoder`, by its `_target_`) and dropout; the task adds its head.",
    "trainer": "Lightning's `Trainer`: hardware, precision, epochs and limits.",
    "callbacks": "What runs around training, one file each; `callbacks.<name>=null` drops one.",
    "logger": "Where the curves go.",
    "experiment": "Bundles of settings that reproduce the documented results.",
    "hparams_search": "Optuna searches, run with `-m`.",
    "debug": "Quick presets for checking a set-up.",
    "paths": "Where runs and caches are written.",
    "hydra": "Run folder names, sweep summaries, `--help`, and launchers for parallel and SLURM sweeps.",
}
# Files that are not options of a group but what the options of one build on.
SHARED = {
    "data_common.yaml": "data",
    "data_base.yaml": "data",
    "tagging_base.yaml": "data",
    "model_base.yaml": "model",
    "recurrent_base.yaml": "model",
}


def leading_comment(lines: list[str]) -> str:
    """The comment block a file opens with: what the file is."""
    out = []
    for line in lines:
        text = line.strip()
        if not text.startswith("#"):
            break
        if text.startswith("# @package"):
            continue
        out.append(text.lstrip("#").strip())
    return " ".join(out)


def inline_comment(line: str) -> str:
    """The comment after a value (`key: 1  # why`), outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (i == 0 or line[i - 1] in " \t"):
            return line[i + 1 :].strip()
    return ""


def key_comments(lines: list[str]) -> dict[str, str]:
    """Each key's dotted path and the comment above it or beside it."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    # A comment block above a key also says what the keys right after it are (until a blank line).
    block: tuple[int, str] | None = None
    in_header = True
    for line in lines:
        text = line.strip()
        if not text:
            pending = []
            block = None
            in_header = False
            continue
        if text.startswith("#"):
            if not in_header:
                pending.append(text.lstrip("#").strip())
            continue
        in_header = False
        indent = len(line) - len(line.lstrip())
        if text.startswith("- ") or ":" not in text or text.startswith(("'", '"')):
            pending = []
            continue
        key = text.split(":", 1)[0].strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        path = ".".join(k for _, k in stack)
        beside = inline_comment(line)
        if pending:
            block = (indent, " ".join(pending))
        elif beside or (block and block[0] != indent):
            block = None
        said = beside or (block[1] if block else "")
        if said:
            comments[path] = said
        pending = []
    return comments


def leaves(node, prefix: str = ""):
    """(dotted key, value) of every setting in a loaded config; the `defaults` list is not one."""
    for key, value in node.items():
        if key == "defaults" and not prefix:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and not any(k == "_target_" for k in value):
            yield from leaves(value, path + ".")
        elif isinstance(value, dict) and value:
            yield path + "._target_", value["_target_"]
            yield from leaves({k: v for k, v in value.items() if k != "_target_"}, path + ".")
        else:
            yield path, value


def shown(value) -> str:
    if isinstance(value, str) and "\n" in value:
        return "(text)"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return text.replace("|", "\\|")


def value_cell(value) -> str:
    """A default as its table cell: code; a long one may wrap after its dots, slashes and commas
    (``<wbr>``), never inside a word."""
    text = shown(value)
    if len(text) <= 24 or not any(mark in text for mark in "./,"):
        return f"`{text}`"
    html = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for mark in "./,":
        html = html.replace(mark, mark + "<wbr>")
    return f"<code>{html}</code>"


def default_name(item) -> str:
    """A defaults-list entry as one writes it on the command line: `model=lstm`, `/model_base`."""
    if isinstance(item, dict):
        ((group, option),) = item.items()
        return f"{group}={'null' if option is None else option}"
    return str(item)


def cell(text: str) -> str:
    """A comment as a table cell's Markdown, showing what the YAML says: outside its `code` spans,
    HTML's <, > and & and Markdown's emphasis marks are escaped (a comment's `<task_name>` or `<s>`
    is text, not a tag); every | is escaped, since the table is Markdown's."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unclosed backtick: no code spans
        parts = [text]
    for i in range(0, len(parts), 2):
        plain = parts[i].replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts[i] = plain.replace("*", "\\*").replace("_", "\\_")
    return "`".join(parts).replace("|", "\\|")


def implied(key: str) -> str:
    """What Hydra's own keys mean, where a file says nothing of them."""
    last = key.rsplit(".", 1)[-1]
    if last == "_target_":
        return "the class Hydra builds from the settings beside it (seqclf.cli.instantiate)"
    if last == "_recursive_":
        return "false: the settings inside are passed as they are, not built first"
    return ""


def file_section(path: Path, heading: str, home: dict[str, str], prefix: str = "") -> str:
    lines = path.read_text().splitlines()
    config = yaml.safe_load(path.read_text()) or {}
    said = key_comments(lines)
    out = [f"### {heading}", "", f"`{path.relative_to(CONF.parent)}`", ""]
    about = leading_comment(lines)
    if about:
        out += [cell(about), ""]
    defaults = config.get("defaults") if isinstance(config, dict) else None
    if defaults:
        names = ", ".join(f"`{default_name(item)}`" for item in defaults)
        out += [f"Builds on: {names}.", ""]
    rows = [
        f"| `{prefix}{key}` | {value_cell(value)} | {cell(said.get(key) or home.get(prefix + key) or implied(key))} |"
        for key, value in leaves(config if isinstance(config, dict) else {})
        if not key.startswith(("hydra.help", "help."))
    ]
    if rows:
        out += ["| setting | default | meaning |", "| --- | --- | --- |", *rows, ""]
    return "\n".join(out)


# Where each setting is defined: a preset or an experiment that sets it again says what it is from here.
HOMES = {
    "train.yaml": "",
    "model_base.yaml": "model.",
    "recurrent_base.yaml": "model.encoder.",
    "data_common.yaml": "data.",
    "data_base.yaml": "data.",
    "tagging_base.yaml": "data.",
    "trainer/default.yaml": "trainer.",
    "hydra/default.yaml": "hydra.",
    "task/classify.yaml": "",
    "task/tagging.yaml": "",
    "task/generate.yaml": "",
}


def meanings() -> dict[str, str]:
    """Each setting's meaning where it is defined, by its full dotted name."""
    found: dict[str, str] = {}
    homes = dict(HOMES)
    homes |= {f"{group}/{p.name}": f"{group}." for group in ("callbacks", "logger") for p in group_options(group)}
    for name, prefix in homes.items():
        for key, said in key_comments((CONF / name).read_text().splitlines()).items():
            found.setdefault(prefix + key, said)
    return found


def group_options(group: str) -> list[Path]:
    folder = CONF / group
    return sorted(p for p in folder.rglob("*.yaml"))


def reference() -> str:
    """The whole reference: the top-level settings, then every group, its shared files and its options."""
    home = meanings()
    out = [
        "## Top-level settings",
        "",
        file_section(CONF / "train.yaml", "`seqclf-train`", home),
        file_section(CONF / "eval.yaml", "`seqclf-eval`", home),
        file_section(CONF / "vectors.yaml", "`seqclf-vectors`", home),
    ]
    for group, about in GROUPS.items():
        out += [f"## `{group}`", "", about, ""]
        package = f"{group}."
        for name, owner in SHARED.items():
            if owner == group:
                out.append(file_section(CONF / name, f"Shared: `{name}`", home, HOMES.get(name, package)))
        for path in group_options(group):
            option = path.relative_to(CONF / group).with_suffix("").as_posix()
            text = path.read_text()
            prefix = "" if "@package _global_" in text else package
            if "/" in option:  # a subgroup, e.g. hydra/launcher=slurm
                sub, leaf = option.rsplit("/", 1)
                heading = f"`{group}/{sub}={leaf}`"
                prefix = prefix and f"{group}.{sub}."
            else:
                heading = f"`{group}={option}`"
            out.append(file_section(path, heading, home, prefix))
    return "\n".join(out)


def covered() -> set[Path]:
    """Every config file the reference shows (a test checks that this is all of conf/)."""
    files = {CONF / "train.yaml", CONF / "eval.yaml", CONF / "vectors.yaml"} | {CONF / name for name in SHARED}
    for group in GROUPS:
        files |= set(group_options(group))
    return files


def on_page_markdown(markdown: str, **_) -> str:
    """MkDocs hook: the configuration page's marker becomes the reference."""
    return markdown.replace(MARKER, reference()) if MARKER in markdown else markdown
