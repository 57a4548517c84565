"""The project's own documents: docs/theory.md (the mathematics, claims C1-C7) and docs/api.md (the API and CLI
contract) are what every reference points at, and they agree with the code.

- (a) no tracked file mentions the unshipped design notes (their names are built below, so that this file does not
  mention them either), and the docs point outside the repository only at ``../shared/data``;
- (b) docs/theory.md has a heading per claim C1..C7, names every claim of ``dtd-formal prove``, and every
  "docs/theory.md section N" / "C3" / "\"Heading\"" reference in the tree names a real section;
- (c) every ``dtd-formal <command>`` named in the docs is a real subcommand (the CLI's own parser), every subcommand
  has its section in docs/api.md listing all its options, and every name of ``dtd_formal.__all__`` appears in
  docs/api.md in code font; relative links between the docs resolve.

The checks are plain functions of text; ``test_checks_can_fail`` feeds each one a wrong document and asserts that
it reports the fault.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
THEORY = DOCS / "theory.md"
API = DOCS / "api.md"

#: the names of the design notes that live outside the repository and are not shipped
UNSHIPPED = ["THEORY" + ".md", "DESIGN" + ".md"]

CLAIM_IDS = [f"C{k}" for k in range(1, 8)]


# ---------------------------------------------------------------------------------------------------- helpers
def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def tracked_files() -> list[Path]:
    """The files git tracks in this checkout (skips the test outside a git checkout)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def unshipped_mentions(files: dict[str, bytes]) -> list[str]:
    """``path: name`` for every file whose content mentions an unshipped design note."""
    return [f"{path}: {name}" for path, data in files.items() for name in UNSHIPPED if name.encode() in data]


def outside_references(text: str) -> list[str]:
    """References to ``../shared/...`` other than the test data folder ``../shared/data``."""
    return [m.group(0) for m in re.finditer(r"\.\./shared/?[\w./-]*", text)
            if not m.group(0).startswith("../shared/data")]


def prose(text: str) -> str:
    """The text without code blocks (fenced, or indented by four spaces after a blank line)."""
    out, fenced, code, blank = [], False, False, True
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        code = line.startswith("    ") and (code or blank)
        blank = not line.strip()
        if not fenced and not code:
            out.append(line)
    return "\n".join(out)


def headings(text: str) -> list[str]:
    """The markdown headings (without the #s), outside code blocks."""
    return [line.lstrip("#").strip() for line in prose(text).splitlines() if re.match(r"#{1,6} ", line)]


def section_ids(text: str) -> set[str]:
    """Section ids of docs/theory.md: "2" for "## 2. Taylor ...", "2.4" for "### 2.4 The rule ...", "C1" for
    "### C1: ...", "P1" for "### P1: ..."."""
    ids = set()
    for h in headings(text):
        m = re.match(r"(\d+(?:\.\d+)*)\.?\s", h) or re.match(r"([CP]\d+)\b", h)
        if m:
            ids.add(m.group(1))
    return ids


def missing_claim_headings(text: str, claims: list[str] = CLAIM_IDS) -> list[str]:
    """Claims without exactly one heading of their own ("### C4: ...")."""
    hs = headings(text)
    return [c for c in claims if sum(bool(re.match(rf"{c}\b", h)) for h in hs) != 1]


def bad_theory_references(files: dict[str, str], theory: str) -> list[str]:
    """References to docs/theory.md whose section, claim or quoted heading does not exist there."""
    ids = section_ids(theory)
    titles = [h.lower() for h in headings(theory)]
    bad = []
    for path, text in files.items():
        for m in re.finditer(r"theory\.md,?\s+(?:section\s+|\()?(\d+(?:\.\d+)*|[CP]\d+)\b", text):
            if m.group(1) not in ids:
                bad.append(f"{path}: {m.group(0)!r}")
        for m in re.finditer(r'theory\.md,\s+"([^"]+)"', text):
            if not any(m.group(1).lower() in t for t in titles):
                bad.append(f"{path}: {m.group(0)!r}")
    return bad


def commands_named(text: str) -> set[str]:
    """Every ``dtd-formal <command>`` in a text (lower-case words after the program name)."""
    return set(re.findall(r"(?<![\w-])dtd-formal[ \t]+([a-z][a-z0-9-]*)", text))


def cli_parser() -> argparse.ArgumentParser:
    from dtd_formal.cli import build_parser

    return build_parser()


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name."""
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> list[str]:
    """The long option strings of a parser, without --help and hidden options."""
    return [s for a in parser._actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
            for s in a.option_strings if s.startswith("--")]


def command_sections(text: str) -> dict[str, str]:
    """docs/api.md's "### `dtd-formal NAME`" sections: name -> the section's text."""
    parts = re.split(r"^### `dtd-formal ([a-z][a-z0-9-]*)`[ \t]*$", text, flags=re.M)
    sections = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        sections[name] = re.split(r"^#{1,3} ", body, maxsplit=1, flags=re.M)[0]
    return sections


def undocumented_options(sections: dict[str, str], commands: dict[str, list[str]]) -> list[str]:
    """``command option`` for every subcommand without a section, or an option its section does not name."""
    out = []
    for name, opts in commands.items():
        if name not in sections:
            out.append(f"{name} (no section)")
            continue
        out += [f"{name} {o}" for o in opts if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", sections[name])]
    return out


def names_not_in_code_font(text: str, names: list[str]) -> list[str]:
    """Names that do not appear in code font (``name`` or ``dtd.name``, possibly followed by a call or more)."""
    return [n for n in names if not re.search(rf"`(?:dtd\.|dtd_formal\.)?{re.escape(n)}(?![\w])", text)]


#: first parts of dotted names in the docs that name the package: ``dtd.lrp``, ``dtd_formal.torch.csc``, its
#: submodules (``symbolic.registry.CLAIMS``) and its public classes (``Network.region``, ``Rule.direction``)
PACKAGE_HEADS = ("dtd", "dtd_formal", "examples", "experiments", "symbolic", "smt", "regions", "rules", "testing",
                 "graph", "io", "walk", "verdict", "replay", "properties", "network", "errors", "exact", "cli")


def dotted_names(text: str) -> set[str]:
    """Dotted names at the start of code spans that refer to the package (format tags like ``x.y/1`` excluded)."""
    import dtd_formal
    import dtd_formal.rules

    heads = set(PACKAGE_HEADS) | set(dtd_formal.__all__) | set(dtd_formal.rules.__all__)
    out = set()
    for code in re.findall(r"`([^`\n]+)`", prose(text)):
        m = re.match(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(.?)", code)
        if m and m.group(2) not in ("/", "-") and m.group(1).split(".")[0] in heads:
            out.add(m.group(1))
    return out


def unresolved_names(names: set[str]) -> list[str]:
    """The dotted names that are neither attributes, dataclass fields nor submodules of the package."""
    import importlib

    import dtd_formal
    import dtd_formal.rules

    bad = []
    for name in sorted(names):
        parts = name.split(".")
        if parts[0] in ("dtd", "dtd_formal"):
            obj, path, parts = dtd_formal, "dtd_formal", parts[1:]
        elif hasattr(dtd_formal, parts[0]) or parts[0] in PACKAGE_HEADS:
            obj, path = dtd_formal, "dtd_formal"
        else:
            obj, path = dtd_formal.rules, "dtd_formal.rules"
        try:
            for part in parts:
                if hasattr(obj, part):
                    obj = getattr(obj, part)
                elif part in getattr(obj, "__dataclass_fields__", {}):
                    obj = None
                else:
                    try:
                        obj = importlib.import_module(f"{path}.{part}")
                    except ModuleNotFoundError as exc:
                        if not str(exc.name).startswith(f"{path}.{part}"):
                            raise
                        bad.append(name)
                        break
                path = f"{path}.{part}"
        except ModuleNotFoundError as exc:  # an optional dependency (torch, onnx) is not installed: not a doc fault
            if str(exc.name).startswith("dtd_formal"):
                raise
    return bad


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def broken_links(docs: dict[Path, str]) -> list[str]:
    """Relative links ``[text](file.md#anchor)`` between the docs whose file or anchor does not exist."""
    bad = []
    for path, text in docs.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(text)):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                bad.append(f"{path.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in {slug(h) for h in headings(read(dest))}:
                bad.append(f"{path.name}: {target} (no such heading)")
    return bad


# ---------------------------------------------------------------------------------------------------- (a)
def test_no_tracked_file_mentions_the_unshipped_design_notes() -> None:
    files = {}
    for p in tracked_files():
        if p.is_file():  # a tracked file deleted in the working tree is not a mention
            files[str(p.relative_to(ROOT))] = p.read_bytes()
    assert files, "git ls-files listed nothing"
    assert unshipped_mentions(files) == [], "point these at docs/theory.md or docs/api.md"


def test_the_new_documents_are_tracked_or_present() -> None:
    assert THEORY.is_file() and API.is_file()


def test_docs_point_outside_the_repository_only_at_the_test_data() -> None:
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        assert outside_references(read(path)) == [], path


# ---------------------------------------------------------------------------------------------------- (b)
def test_theory_states_each_claim_with_its_own_heading() -> None:
    assert missing_claim_headings(read(THEORY)) == []


def test_theory_names_every_claim_of_prove_and_its_theory_tag() -> None:
    from dtd_formal.symbolic.registry import CLAIMS

    text = read(THEORY)
    assert names_not_in_code_font(text, list(CLAIMS)) == []
    ids = section_ids(text)
    for claim in CLAIMS.values():  # the registry's "theory" column: "C2", "P1", "section 2", "section 2 table"
        tag = claim.theory.replace("section ", "").split()[0]
        assert tag in ids, (claim.name, claim.theory)


def test_theory_cites_the_paper() -> None:
    text = read(THEORY)
    assert "2211.08425" in text and "Sixt" in text and "Landgraf" in text and "TMLR" in text


def test_every_reference_to_theory_names_a_real_section() -> None:
    files = {}
    for p in tracked_files() + [API, DOCS / "architecture.md"]:
        if p.is_file() and p.suffix in (".py", ".md") and p != THEORY:
            files[str(p.relative_to(ROOT))] = read(p)
    assert bad_theory_references(files, read(THEORY)) == []


# ---------------------------------------------------------------------------------------------------- (c)
def test_every_command_named_in_the_docs_is_a_real_subcommand() -> None:
    real = set(subcommands(cli_parser()))
    for path in sorted(DOCS.glob("*.md")):
        assert commands_named(read(path)) - real == set(), path
    assert commands_named(read(API)) >= real, "every subcommand is named in docs/api.md"


def test_the_parser_lists_the_registered_command_modules() -> None:
    from dtd_formal import cli

    assert set(subcommands(cli_parser())) == {m.replace("_", "-") for m in cli.COMMANDS}


def test_every_subcommand_and_option_is_documented_in_its_section() -> None:
    commands = {name: options(p) for name, p in subcommands(cli_parser()).items()}
    assert undocumented_options(command_sections(read(API)), commands) == []


def test_every_public_name_appears_in_api_md() -> None:
    import dtd_formal

    assert names_not_in_code_font(read(API), list(dtd_formal.__all__)) == []


def test_api_md_states_the_exit_codes_the_cli_uses() -> None:
    from dtd_formal import cli

    text = read(API)
    table = text.split("## Exit codes", 1)[1]
    for code in (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_UNKNOWN):
        assert re.search(rf"^\| {code} \|", table, flags=re.M), code
    assert "dtd_formal.verdict/2" in text


def test_links_between_the_docs_resolve() -> None:
    docs = {p: read(p) for p in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]}
    assert broken_links(docs) == []
    readme, architecture = read(ROOT / "README.md"), read(DOCS / "architecture.md")
    for name in ("theory.md", "api.md"):
        assert f"(docs/{name})" in readme and f"({name}" in architecture, name


def test_names_in_the_docs_exist() -> None:
    for path in (THEORY, API):
        names = dotted_names(read(path))
        assert len(names) > 10, path
        assert unresolved_names(names) == [], path


# ---------------------------------------------------------------------------------------------------- the checks fail
def test_checks_can_fail(tmp_path: Path) -> None:
    bad_name = UNSHIPPED[0]
    assert unshipped_mentions({"x.py": f"see {bad_name} section 2".encode(), "y.py": b"fine"}) == [f"x.py: {bad_name}"]
    assert outside_references("data in ../shared/data/a.onnx, notes in ../shared/notes.md") == ["../shared/notes.md"]

    theory = "# T\n\n## 2. Taylor\n\n### 2.4 The rule catalogue\n\n### C1: one\n\n### C2: two\n\n```\n### C3: in code\n```\n"
    assert missing_claim_headings(theory) == ["C3", "C4", "C5", "C6", "C7"]
    assert missing_claim_headings(theory + "### C1: again\n", ["C1"]) == ["C1"]
    assert section_ids(theory) == {"2", "2.4", "C1", "C2"}
    refs = {"a.py": "(docs/theory.md section 4)", "b.py": "docs/theory.md C2", "c.py": 'docs/theory.md, "Two normalisers"'}
    assert bad_theory_references(refs, theory) == ["a.py: 'theory.md section 4'",
                                                   "c.py: 'theory.md, \"Two normalisers\"'"]

    assert commands_named("run `dtd-formal frobnicate --x` or dtd-formal prove; not my-dtd-formal x") == {
        "frobnicate", "prove"}
    api = "### `dtd-formal prove`\n\n`--fast`, `--list`\n\n### `dtd-formal roots`\n\n`--rule`\n\n## Exit codes\n"
    assert undocumented_options(command_sections(api), {"prove": ["--fast", "--json"], "roots": ["--rule"],
                                                        "replay": []}) == ["prove --json", "replay (no section)"]
    assert names_not_in_code_font("`dtd.lrp(net, x)` and roots in prose", ["lrp", "roots"]) == ["roots"]

    (tmp_path / "a.md").write_text("## One two\n\n[ok](b.md#three) [bad](b.md#four) [gone](c.md) [web](https://x.y)\n"
                                   "\n    R = [dR / da](root) in an indented code block\n")
    (tmp_path / "b.md").write_text("### Three\n")
    docs = {p: p.read_text() for p in (tmp_path / "a.md", tmp_path / "b.md")}
    assert broken_links(docs) == ["a.md: b.md#four (no such heading)", "a.md: c.md (no such file)"]

    names = dotted_names("`dtd.lrp(net, x)`, `Network.region`, `dtd.no_such_function`, `symbolic.nothing.here`, "
                         "`Relevance.conservation`, `dtd_formal.verdict/2`, `dtd_formal.root-exit-report/1`, `numpy.asarray`")
    assert names == {"dtd.lrp", "Network.region", "dtd.no_such_function", "symbolic.nothing.here",
                     "Relevance.conservation"}
    assert unresolved_names(names) == ["dtd.no_such_function", "symbolic.nothing.here"]
