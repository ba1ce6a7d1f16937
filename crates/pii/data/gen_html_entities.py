#!/usr/bin/env python3
"""Writes crates/pii/src/html_entities.rs: the named character references of HTML
(the WHATWG HTML standard's table, as Python's html.entities.html5 ships it), those written
with their closing semicolon, sorted by name for a binary search, and the legacy names also
read without it.

    python3 crates/pii/data/gen_html_entities.py > crates/pii/src/html_entities.rs
"""
import html.entities

names = sorted(
    (k[:-1], v) for k, v in html.entities.html5.items() if k.endswith(";")
)
print("//! Named character references of HTML (`&commat;`, `&eacute;`), from the WHATWG HTML")
print("//! standard's table as Python's `html.entities.html5` ships it; written by")
print("//! `crates/pii/data/gen_html_entities.py`, not by hand.")
print()
print("/// (name without `&` and `;`, the characters it writes), sorted by name.")
print("pub(crate) const NAMED: &[(&str, &str)] = &[")
for k, v in names:
    esc = "".join(
        c if (c.isprintable() and c not in '"\\' and ord(c) < 0x80) else "\\u{%x}" % ord(c)
        for c in v
    )
    print(f'    ("{k}", "{esc}"),')
print("];")
print()
print("/// Names a browser reads without their `;` in text (`&nbsp4111`: HTML's legacy references),")
print("/// sorted.")
print("pub(crate) const LEGACY: &[&str] = &[")
for k in sorted(k for k in html.entities.html5 if not k.endswith(";")):
    print(f'    "{k}",')
print("];")
