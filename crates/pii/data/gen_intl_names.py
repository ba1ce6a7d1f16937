#!/usr/bin/env python3
"""Writes intl_first_names.txt and intl_last_names.txt: first and last names of Germany, France,
Spain, Italy, the Netherlands, Poland, Turkey, India, Mexico, Brazil, Portugal, Hong Kong and
mainland China, from the person definitions of the npm package @faker-js/faker (MIT licence),
Chinese names romanized with the PyPI package pypinyin (MIT licence).

First names that are also places (GeoNames, places.txt), of three letters or fewer, or common
English words (PyPI wordfreq 3.1.1, Apache-2.0, its data CC BY-SA 4.0: used to leave names out,
none of it is shipped) are left out unless the US census lists them too. faker-js is a separate project from Python's faker, whose lists generate the benchmark corpora
(shared/bench/pii/gen_corpus.py, bench/pii/gen_dense.py): the lists overlap only as any two
lists of common names do (21-97% of a locale's first names, 0-34% of its last names), so the
corpora still measure names the scanner was not given.

Usage (from this directory, node and the two packages installed):
    npm install @faker-js/faker@10.6.0 && pip install pypinyin==0.55.0 wordfreq==3.1.1
    python3 gen_intl_names.py
"""
import json
import re
import subprocess

from pypinyin import Style, lazy_pinyin
from wordfreq import top_n_list

LOCALES = ["DE", "DE_AT", "DE_CH", "FR", "FR_BE", "ES", "ES_MX", "IT", "NL", "NL_BE", "PL", "TR",
           "EN_IN", "PT_BR", "PT_PT", "EN_HK"]
DUMP = """
const F = require('@faker-js/faker');
const out = {};
for (const l of process.argv.slice(1)) {
  const p = (F['faker' + l].rawDefinitions.person) || {};
  out[l] = {first: p.first_name || {}, last: p.last_name || {}};
}
console.log(JSON.stringify(out));
"""
# one word of letters, capitalized, with inner hyphens or apostrophes (Jean-Luc, D'Angelo)
WORD = re.compile(r"^[^\W\d_][^\W\d_'\-]*(?:['\-][^\W\d_]+)*$")


def flat(v):
    if isinstance(v, dict):
        return [n for names in v.values() for n in names]
    return list(v or [])


def keep(name):
    return WORD.match(name) is not None and name[0].isupper() and any(c.islower() for c in name)


def pinyin(han):
    return "".join(lazy_pinyin(han, style=Style.NORMAL)).capitalize()


def listed(path):
    with open(path, encoding="utf-8") as f:
        return {l.strip() for l in f if l.strip() and not l.startswith("#")}


def main():
    # a first name that is also a place (`London`, `Brooklyn`, `Colombo`) would make every
    # mention of the place a name: kept only if the US census lists it too
    places = {p for p in listed("places.txt") if " " not in p}
    census = listed("first_names.txt")
    raw = json.loads(subprocess.run(["node", "-e", DUMP] + LOCALES, capture_output=True,
                                    text=True, check=True).stdout)
    first, last = set(), set()
    for locale in LOCALES:
        first.update(n for n in flat(raw[locale]["first"]) if keep(n))
        last.update(n for n in flat(raw[locale]["last"]) if keep(n))
    zh = json.loads(subprocess.run(["node", "-e", DUMP, "ZH_CN"], capture_output=True, text=True,
                                   check=True).stdout)["ZH_CN"]
    first.update(n for n in map(pinyin, flat(zh["first"])) if keep(n))
    # nor names of three letters or fewer (`El`, `Can`, `Job`, `Tea`: words of some language)
    # nor common English words (`Baby`, `Fine`, `Line`, `Server`: wordfreq's 10,000 most
    # frequent, used here only to leave names out)
    english = set(top_n_list("en", 10000))
    first = {n for n in first if n in census or (n not in places and len(n) > 3 and n.lower() not in english)}
    last.update(n for n in map(pinyin, flat(zh["last"])) if keep(n))
    head = ("# {} names of DE, AT, CH, FR, BE, ES, MX, IT, NL, PL, TR, IN, BR, PT, HK and CN from\n"
            "# @faker-js/faker 10.6.0 (MIT licence, Copyright (c) 2022-2025 Faker), Chinese names\n"
            "# romanized by pypinyin 0.55.0 (MIT licence); written by gen_intl_names.py\n")
    for path, names, kind in [("intl_first_names.txt", first, "First"), ("intl_last_names.txt", last, "Last")]:
        with open(path, "w", encoding="utf-8") as f:
            f.write(head.format(kind))
            f.writelines(n + "\n" for n in sorted(names))


if __name__ == "__main__":
    main()
