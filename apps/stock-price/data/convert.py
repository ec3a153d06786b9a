#!/usr/bin/env python3
"""Converts the US index constituent lists shipped by the PyPI package
pytickersymbols into companies.tsv, the built-in company table of the
stock-price app. Run once; the output is committed, the package is not.

Source: PyPI pytickersymbols 1.17.10 (MIT licence), module
pytickersymbols/indices_data.py (the package compiles it from Wikipedia's
index constituent lists). Indices used: S&P 500, NASDAQ 100, DOW JONES,
S&P 600. Only the symbol and the company name are kept; a symbol listed in
several indices is kept once (first index wins, in the order above).

Usage:
    python3 -m venv VENV && VENV/bin/pip install pytickersymbols==1.17.10
    VENV/bin/python apps/stock-price/data/convert.py > apps/stock-price/data/companies.tsv
"""

import importlib.metadata
import re
import sys

INDICES = ["S&P 500", "NASDAQ 100", "DOW JONES", "S&P 600"]
SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


def main() -> None:
    from pytickersymbols.indices_data import INDICES as DATA

    version = importlib.metadata.version("pytickersymbols")
    seen = {}
    for index in INDICES:
        for company in DATA[index]["companies"]:
            symbol = (company.get("symbol") or "").strip().upper()
            name = " ".join((company.get("name") or "").split())
            if not SYMBOL.match(symbol) or not name or symbol in seen:
                continue
            seen[symbol] = name
    out = sys.stdout
    out.write("# US-listed companies (symbol, name): constituents of %s,\n" % ", ".join(INDICES))
    out.write("# from PyPI pytickersymbols %s (MIT), compiled by that package from\n" % version)
    out.write("# Wikipedia's index lists; converted by apps/stock-price/data/convert.py. %d rows.\n" % len(seen))
    out.write("symbol\tname\n")
    for symbol in sorted(seen):
        out.write("%s\t%s\n" % (symbol, seen[symbol]))


if __name__ == "__main__":
    main()
