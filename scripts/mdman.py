#!/usr/bin/env python3
"""Writes a man page (roff, man macros plus tbl) from one page of docs/cli/
or from docs/CLI.md, so the Markdown stays the one source (issue 12).

    mdman.py --name postern-send --section 1 --version 0.1.0 \\
             --index docs/CLI.md docs/cli/send.md out/postern-send.1

The one-line description of NAME comes from the "what" column of the
command table in docs/CLI.md (--index), the page that row links to. The
first code block after the title becomes SYNOPSIS, the text up to the first
"##" heading DESCRIPTION, and every "##" heading a section of its own.

Handles the Markdown the docs use and nothing more: headings, paragraphs,
fenced code, "-" and "1." lists with indented continuation lines, pipe
tables, `code`, **bold**, *emphasis* and [links](target). Anything else
passes through as text. Python standard library only: meson runs it at
build time on any machine that builds Postern."""

import argparse
import os
import re
import sys

TABLE_ROW = re.compile(r"^\|(.*)\|\s*$")
TABLE_RULE = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
BULLET = re.compile(r"^(\s*)- (.*)$")
NUMBERED = re.compile(r"^(\s*)(\d+)\. (.*)$")
LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
# the folder of the page being converted, from the top of the source tree
# ("docs/cli"): links are relative to it
SOURCE_DIR = "docs"


def escape(text):
    """Roff-escapes plain text: backslashes, and the hyphens an option
    needs to stay ASCII when copied from the rendered page."""
    return text.replace("\\", "\\e").replace("-", "\\-")


def link_text(label, target, pages):
    """A link becomes its text; a link to another documented command also
    names its man page, a web link keeps its address."""
    base = os.path.basename(target.split("#")[0])
    if base in pages and label.endswith(".md"):
        return pages[base]
    if base in pages and pages[base] not in label:
        return f"{label} ({pages[base]})"
    if target.startswith(("http://", "https://")):
        return f"{label} <{target}>"
    if label.endswith(".md"):
        # a page of the source tree, named from the top: docs/SERVICE.md
        return os.path.normpath(os.path.join(SOURCE_DIR, target.split("#")[0]))
    return label


def inline(text, pages):
    """Converts the inline Markdown of one line or table cell to roff."""
    out = []
    # code spans first: nothing inside them is Markdown
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2 == 1:
            # a break point after separators: JSON and paths are long words
            code = re.sub(r"([,/|])", r"\1\\:", escape(part[1:-1]))
            out.append("\\fB" + code + "\\fR")
            continue
        part = LINK.sub(lambda m: link_text(m.group(1), m.group(2), pages), part)
        part = escape(part)
        part = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", part)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\\fI\1\\fR", part)
        out.append(part)
    return "".join(out)


def guard(line):
    """A line that would start with a control character is protected."""
    return "\\&" + line if line.startswith((".", "'")) else line


def code_block(lines):
    out = [".PP", ".RS 4", ".nf"]
    out += [guard(escape(l)) for l in lines]
    out += [".fi", ".RE"]
    return out


def shown(cell, pages):
    """The text of a cell as the reader sees it (for its width)."""
    return LINK.sub(lambda m: link_text(m.group(1), m.group(2), pages), cell).replace("`", "")


def split_row(row):
    """Cells of a pipe-table row; "\\|" is a pipe inside a cell."""
    inner = TABLE_ROW.match(row).group(1)
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def table(rows, pages):
    cells = [split_row(r) for r in rows]
    ncol = len(cells[0])
    out = [".PP", ".TS", "tab(\t);", " ".join(["l"] * (ncol - 1) + ["lx"]) + "."]
    for i, row in enumerate(cells):
        row = (row + [""] * ncol)[:ncol]
        if i == 0:
            out.append("\t".join("\\fB" + inline(c, pages) + "\\fR" for c in row))
            out.append("_")
            continue
        # a long cell is a text block, which tbl wraps; short ones keep
        # their width, so a command name is never broken
        out.append("\t".join("T{\n" + guard(inline(c, pages)) + "\nT}"
                              if len(shown(c, pages)) > 30 else guard(inline(c, pages))
                              for c in row))
    out.append(".TE")
    return out


def convert(md_lines, pages):
    """Body of the page after the title: (synopsis lines, roff lines)."""
    out, synopsis, headed = [".SH DESCRIPTION"], None, False
    i, n = 0, len(md_lines)
    para = []

    def flush():
        if para:
            # one line: a code span may go on over a line break
            out.append(".PP")
            out.append(guard(inline(" ".join(para), pages)))
            para.clear()

    while i < n:
        line = md_lines[i].rstrip("\n")
        if line.startswith("```"):
            flush()
            j = i + 1
            while j < n and not md_lines[j].startswith("```"):
                j += 1
            block = [l.rstrip("\n") for l in md_lines[i + 1:j]]
            # the usage block: the first code block, before any heading,
            # that shows the command
            if synopsis is None and not headed and block and block[0].startswith("postern"):
                synopsis = block
            else:
                out += code_block(block)
            i = j + 1
            continue
        if line.startswith("#"):
            headed = True
        if line.startswith("### "):
            flush()
            out.append(".SS " + inline(line[4:], pages))
        elif line.startswith("## "):
            flush()
            out.append(".SH " + inline(line[3:], pages).upper())
        elif TABLE_ROW.match(line) and i + 1 < n and TABLE_RULE.match(md_lines[i + 1]):
            flush()
            rows = [line]
            j = i + 2
            while j < n and TABLE_ROW.match(md_lines[j]):
                rows.append(md_lines[j].rstrip("\n"))
                j += 1
            out += table(rows, pages)
            i = j
            continue
        elif BULLET.match(line) or NUMBERED.match(line):
            flush()
            m = BULLET.match(line)
            tag, text = ("\\(bu", m.group(2)) if m else (NUMBERED.match(line).group(2) + ".",
                                                          NUMBERED.match(line).group(3))
            item = [text]
            j = i + 1
            # continuation: indented lines that do not start another item
            while (j < n and md_lines[j].startswith("  ") and md_lines[j].strip()
                   and not BULLET.match(md_lines[j]) and not NUMBERED.match(md_lines[j])):
                item.append(md_lines[j].strip())
                j += 1
            out.append(f".IP {tag} 4")
            out.append(guard(inline(" ".join(item), pages)))
            i = j
            continue
        elif not line.strip():
            flush()
        else:
            para.append(line.strip())
        i += 1
    flush()
    return synopsis, out


def index_of(path):
    """From docs/CLI.md's command table: page file -> (command, what)."""
    found = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = TABLE_ROW.match(line)
            if not m:
                continue
            cells = split_row(line)
            link = LINK.search(cells[1]) if len(cells) >= 3 else None
            if link:
                found[os.path.basename(link.group(2))] = (cells[0], cells[2])
    return found


def man_name(page, section):
    """docs/cli/key-get.md -> postern-key-get(1); posternd.md -> posternd(8)."""
    stem = os.path.splitext(os.path.basename(page))[0]
    return "posternd(8)" if stem == "posternd" else f"postern-{stem}({section})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True, help="page name, e.g. postern-send")
    ap.add_argument("--section", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--index", required=True, help="docs/CLI.md")
    ap.add_argument("--description", help="NAME line when the index has none")
    ap.add_argument("--synopsis", action="append",
                    help="a SYNOPSIS line when the page has no usage block (repeatable)")
    ap.add_argument("input")
    ap.add_argument("output")
    args = ap.parse_args()

    global SOURCE_DIR
    root = os.path.dirname(os.path.dirname(os.path.abspath(args.index)))
    SOURCE_DIR = os.path.relpath(os.path.dirname(os.path.abspath(args.input)), root)
    index = index_of(args.index)
    pages = {p: man_name(p, "1") for p in index}
    with open(args.input, encoding="utf-8") as f:
        lines = f.readlines()
    if not lines or not lines[0].startswith("# "):
        sys.exit(f"mdman: {args.input}: the first line must be the '# title'")
    base = os.path.basename(args.input)
    what = args.description or (index[base][1] if base in index else None)
    if what is None:
        sys.exit(f"mdman: {args.input}: not in the command table of {args.index}; "
                 f"give --description")
    synopsis, body = convert(lines[1:], pages)
    synopsis = synopsis or args.synopsis

    out = ["'\\\" t",
           f".\\\" Generated by scripts/mdman.py from docs/{os.path.relpath(args.input, os.path.dirname(args.index))}; edit that file.",
           f".TH {args.name.upper()} {args.section} \"\" \"postern {args.version}\" \"Postern Manual\"",
           # ragged right, no hyphenation: long code spans (JSON, paths)
           # cannot be justified, and a hyphen added inside a flag misleads
           ".ad l",
           ".nh",
           ".SH NAME",
           f"{escape(args.name)} \\- {inline(what, pages)}"]
    if synopsis:
        out += [".SH SYNOPSIS", ".nf"] + [guard(escape(l)) for l in synopsis] + [".fi"]
    out += body
    own = f"{args.name}({args.section})"
    see = [p for p in sorted(set(pages.values())) if p != own]
    if args.name != "postern":
        see = ["postern(1)"] + [p for p in see if p == "posternd(8)" and own != p]
    out += [".SH SEE ALSO", ", ".join("\\fB" + escape(p.split("(")[0]) + "\\fR(" +
                                      p.split("(")[1] for p in see)]
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
