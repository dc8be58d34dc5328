"""The configuration reference of the documentation site covers every config file and setting."""

from __future__ import annotations

import importlib.util
import re
from html.parser import HTMLParser
from pathlib import Path

from omegaconf import OmegaConf

from seqclf import CONF_DIR
from seqclf.cli.config import load_config

DOCS = Path(__file__).resolve().parent.parent / "docs"


def confref():
    spec = importlib.util.spec_from_file_location("confref", DOCS / "confref.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_shows_every_config_file():
    assert confref().covered() == set(Path(CONF_DIR).resolve().rglob("*.yaml"))


def test_every_setting_of_the_default_run_and_of_each_task_has_a_row(tmp_path):
    ref = confref()
    text = ref.reference()
    for task in ("classify", "tagging", "generate"):
        cfg = load_config([f"task={task}"], output_dir=tmp_path)
        settings = OmegaConf.to_container(cfg, resolve=False)
        del settings["hydra"]
        for key, _ in ref.leaves(settings):
            if key.startswith("paths.") or key.startswith("callbacks.") and key.count(".") > 2:
                continue
            assert f"| `{key}` |" in text, key


def test_the_hook_fills_the_configuration_page_only():
    ref = confref()
    page = (DOCS / "configuration.md").read_text()
    assert ref.MARKER in page
    filled = ref.on_page_markdown(page)
    assert ref.MARKER not in filled
    assert "| `model.encoder.hidden_size` | `32` | recurrent state size (per direction) |" in filled
    assert ref.on_page_markdown("# another page") == "# another page"


def test_a_comment_says_what_the_keys_under_it_are_until_a_blank_line():
    ref = confref()
    lines = [
        "# the file",
        "",
        "# two columns",
        "a: 1",
        "b: 2",
        "c: 3  # its own",
        "d: 4",
        "",
        "e: 5",
        "f:",
        "  # nested",
        "  g: 6",
    ]
    assert ref.key_comments(lines) == {"a": "two columns", "b": "two columns", "c": "its own", "f.g": "nested"}
    assert ref.leading_comment(lines) == "the file"


class _PageText(HTMLParser):
    """A built page's visible text, and the tags it uses."""

    def __init__(self) -> None:
        super().__init__()
        self.text, self.tags = [], set()

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.add(tag)

    def handle_data(self, data) -> None:
        self.text.append(data)


def test_the_built_configuration_page_shows_what_the_comments_say(tmp_path, monkeypatch):
    """Built by MkDocs as the site is: a comment's <task_name> and <s:pos> are text on the page, and
    nothing is struck through (a bare <s> in a comment once struck out the rest of the page)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config as mkdocs_config

    root = DOCS.parent
    monkeypatch.chdir(tmp_path)  # built from another folder: the README snippets are found beside mkdocs.yml
    build(mkdocs_config(str(root / "mkdocs.yml"), site_dir=str(tmp_path / "site")))
    page = _PageText()
    page.feed((tmp_path / "site" / "configuration" / "index.html").read_text())
    text = "".join(page.text)
    assert "outputs/<task_name>/runs/" in text
    assert "<s:pos>" in text and "the plain start token <s> (IMDB: unsupervised)" in text
    assert not page.tags & {"s", "del", "strike"}
    # a long default wraps after its dots only, and never inside a word (the stylesheet the page links)
    assert "<code>seqclf.<wbr>tasks.<wbr>generate.<wbr>data.<wbr>GenerationDataModule</code>" in (
        (tmp_path / "site" / "configuration" / "index.html").read_text()
    )
    assert "stylesheets/tables.css" in (tmp_path / "site" / "configuration" / "index.html").read_text()
    css = (tmp_path / "site" / "stylesheets" / "tables.css").read_text()
    assert "word-break: normal" in css and "overflow-wrap: normal" in css


def test_a_comment_becomes_a_cell_that_shows_it_as_written():
    ref = confref()
    assert ref.cell("runs in outputs/<task_name>/runs/ | a <s> token") == (
        "runs in outputs/&lt;task\\_name&gt;/runs/ \\| a &lt;s&gt; token"
    )
    assert ref.cell("e.g. `model.class_weights='{pos: 2.0}'` or *") == "e.g. `model.class_weights='{pos: 2.0}'` or \\*"


def test_the_layout_names_every_module_of_seqclf():
    """docs/extending.md's layout lists each folder of seqclf/ and each module in it."""
    page = (DOCS / "extending.md").read_text()
    layout = page[page.index("## Layout") : page.index("## Extending seqclf")]
    package = Path(CONF_DIR).parent / "seqclf"
    for path in package.rglob("*.py"):
        relative = path.relative_to(package)
        for folder in relative.parent.parts:
            assert f"{folder}/" in layout, folder
        assert path.name in layout, relative


def test_every_setting_on_the_configuration_page_says_what_it_means():
    """Each row of the reference has a meaning: a comment where the setting is set, where it is first
    defined, or (Hydra's own keys) what the key does."""
    rows = [line for line in confref().reference().splitlines() if line.startswith("| `")]
    cells = [re.split(r"(?<!\\)\|", row)[1:4] for row in rows]  # setting, default, meaning
    silent = [key.strip() for key, _, meaning in cells if not meaning.strip()]
    assert len(rows) > 400 and not silent, silent
