"""Write docs/reference/cli.md, the command-line reference, from the typer app itself.

    python -m scripts.cli_docs            # regenerate the page (commit it with the CLI change)
    python -m scripts.cli_docs --check    # exit 1 when the committed page no longer matches the CLI

The page is typer's own `typer genseq.cli utils docs --name genseq` output, with a line saying where it
comes from; nothing in it is written by hand.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reference" / "cli.md"
NOTE = "<!-- Generated from the typer app by `python -m scripts.cli_docs`; edit the CLI's help, not this page. -->\n\n"


def render() -> str:
    """The reference page as typer writes it for genseq's app, with the generated-file note on top."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "cli.md"
        subprocess.run(
            [sys.executable, "-m", "typer", "genseq.cli", "utils", "docs", "--name", "genseq", "--output", str(out)],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )
        text = out.read_text(encoding="utf-8")
    return NOTE + text.rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed page instead of writing it")
    args = parser.parse_args()
    text = render()
    if args.check:
        if PAGE.exists() and PAGE.read_text(encoding="utf-8") == text:
            return 0
        print(f"{PAGE.relative_to(ROOT)} is out of date: run python -m scripts.cli_docs", file=sys.stderr)
        return 1
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
