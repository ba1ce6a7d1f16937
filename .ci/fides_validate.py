#!/usr/bin/env python3
"""Validate Fides (fideslang) YAML manifests, such as those `custodia fides export` writes.

Installing fideslang (how CI does it; nothing else is needed):

    venv="${CUSTODIA_FIDES_VENV:-$HOME/.cache/custodia-fides-venv}"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "fideslang==3.1.4" "PyYAML==6.0.4"
    "$venv/bin/python" .ci/fides_validate.py DIR

fideslang 3.1.4 is the newest release on PyPI; it brings pydantic 2 (<2.13) and PyYAML. The
pin matters: the default taxonomy that references resolve against is the one fideslang
ships, and it changes between releases. A different version is used, with a warning.

Usage:

    fides_validate.py [--allow-unknown-keys] [--quiet] PATH [PATH ...]

PATH is a directory (searched recursively for *.yml and *.yaml, as `fides` does) or one
manifest file. Several paths are validated together, as one set of resources.

What is checked, for every resource of every file:
  1. The file is YAML whose top level is a mapping of resource types (`organization`,
     `dataset`, `system`, `data_category`, `data_use`, `data_subject`, `policy`) to lists.
  2. Each resource validates against fideslang's own pydantic model, as `fides parse` does
     (fideslang.model_map[type].model_validate, the call fideslang.parse.parse_dict makes).
  3. No key is silently dropped: fideslang's models ignore unknown keys (`shared_with`,
     a misspelt `legal_basis`, ...), so a key no model declares is reported here
     (--allow-unknown-keys makes these warnings).
  4. Every fides_key a resource refers to resolves, either to fideslang's default taxonomy or to
     a resource in the manifests: data categories, data uses and data subjects (on datasets,
     collections, fields, privacy declarations, data flows and policy rules), dataset
     references of systems and privacy declarations, systems and datasets named by data
     flows (egress/ingress), field references between datasets (fides_meta.references),
     collection ordering (after/erase_after), organization_fides_key, and the parent_key and
     replaced_by of custom taxonomy items. fideslang's own check
     (fideslang.relationships.get_referenced_missing_keys) is run too, but it misses every
     Optional[List[FidesKey]] field (dataset categories among them), hence this walk.
  5. No two resources of one type share a fides_key; no custom taxonomy item redefines a
     default one (a Fides server refuses to change those).
  6. Finally the whole set is loaded through fideslang's own ingestion path
     (fideslang.manifests.ingest_manifests + fideslang.parse.load_manifests_into_taxonomy),
     which is what `fides parse` / `fides push` run first.

A reference to a deprecated default taxonomy item is a warning, with its replacement.

Output: each problem on stderr as `FILE: TYPE 'FIDES_KEY': WHERE: MESSAGE`, then a count,
exit status 1. On success one summary line on stdout, exit status 0. Usage errors exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import copy as copy_module
import io
import os
import sys
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

PINNED_FIDESLANG = "3.1.4"

try:
    import yaml
    import pydantic
    import fideslang
    from fideslang import DEFAULT_TAXONOMY, model_map
    from fideslang.manifests import ingest_manifests
    from fideslang.models import (
        Dataset,
        DatasetField,
        FidesopsMetaBackwardsCompat,
        Policy,
        System,
        Taxonomy,
    )
    from fideslang.parse import load_manifests_into_taxonomy
    from fideslang.relationships import get_referenced_missing_keys
except ImportError as err:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"fides_validate: cannot import fideslang ({err}); install it with\n"
        f'  pip install "fideslang=={PINNED_FIDESLANG}" PyYAML\n'
    )
    sys.exit(2)

# The resource types a manifest may hold: the fields of fideslang's Taxonomy (model_map also
# has `evaluation`, which is a result, not a resource; Taxonomy would silently drop it).
RESOURCE_TYPES = list(Taxonomy.model_fields)
TAXONOMY_TYPES = ("data_category", "data_use", "data_subject")
KIND_NAMES = {
    "data_category": "data category",
    "data_use": "data use",
    "data_subject": "data subject",
    "dataset": "dataset",
    "system": "system",
    "organization": "organization",
    "policy": "policy",
}


@dataclass
class Resource:
    file: str
    rtype: str
    key: str
    raw: Dict[str, Any]
    # fideslang's model of it; when fideslang refused it (already reported), a lenient copy
    # for reference checks only, or None.
    model: Any = None


@dataclass
class Report:
    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def error(self, file: str, message: str) -> None:
        self.errors.append(f"{file}: {message}")

    def warn(self, file: str, message: str) -> None:
        self.warnings.append(f"{file}: warning: {message}")


def subject(res: Resource) -> str:
    return f"{res.rtype} '{res.key}'"


# ---------------------------------------------------------------------------------------------
# Reading files


def find_manifests(path: str) -> List[Tuple[str, str]]:
    """(absolute path, name shown in messages) of every manifest under `path`."""
    if os.path.isfile(path):
        return [(path, path)]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            if name.endswith((".yml", ".yaml")):
                full = os.path.join(root, name)
                found.append((full, os.path.relpath(full, os.path.dirname(path.rstrip("/")) or ".")))
    return found


def label_of(item: Any, index: int) -> str:
    """How a list element is named in messages: its name or fides_key, else its index."""
    if isinstance(item, dict):
        for key in ("name", "fides_key"):
            if isinstance(item.get(key), str):
                return f"[{item[key]}]"
    return f"[{index}]"


def loc_to_path(raw: Any, loc: Iterable[Any]) -> str:
    """A pydantic error location, with list indices replaced by the items' names."""
    path = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            if isinstance(node, list) and 0 <= part < len(node):
                path += label_of(node[part], part)
                node = node[part]
            else:
                path += f"[{part}]"
                node = None
        else:
            path += ("." if path else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return path or "(resource)"


def read_file(full: str, shown: str, report: Report) -> List[Resource]:
    try:
        with open(full, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError) as err:
        report.error(shown, f"cannot read: {err}")
        return []
    except yaml.YAMLError as err:
        report.error(shown, f"not valid YAML: {' '.join(str(err).split())}")
        return []
    if data is None:
        report.error(shown, "empty manifest (fides skips it)")
        return []
    if not isinstance(data, dict):
        report.error(shown, "the top level must be a mapping of resource types to lists (fides skips this file)")
        return []
    resources = []
    for rtype, items in data.items():
        if rtype not in RESOURCE_TYPES:
            report.error(
                shown,
                f"unknown resource type '{rtype}' (one of: {', '.join(RESOURCE_TYPES)})",
            )
            continue
        if not isinstance(items, list):
            report.error(shown, f"'{rtype}' must be a list of resources, not {type(items).__name__}")
            continue
        for index, raw in enumerate(items):
            if not isinstance(raw, dict):
                report.error(shown, f"{rtype}[{index}]: a resource must be a mapping, not {type(raw).__name__}")
                continue
            key = raw.get("fides_key")
            key = key if isinstance(key, str) and key else f"#{index}"
            resources.append(Resource(shown, rtype, key, raw))
    return resources


# ---------------------------------------------------------------------------------------------
# Model validation and keys the models would drop


def model_classes(annotation: Any) -> List[type]:
    """The pydantic model classes inside a field annotation (through Optional, List, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    found: List[type] = []
    for arg in typing.get_args(annotation):
        found.extend(model_classes(arg))
    return found


def unknown_keys(model_cls: type, data: Any, path: str) -> List[Tuple[str, str]]:
    """(path, model name) of each key in `data` that `model_cls` (recursively) lacks."""
    if not isinstance(data, dict):
        return []
    fields = model_cls.model_fields
    known = set(fields) | {f.alias for f in fields.values() if f.alias}
    if issubclass(model_cls, FidesopsMetaBackwardsCompat):
        known.add("fidesops_meta")  # renamed to fides_meta on the way in
    found = []
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in known:
            found.append((where, model_cls.__name__))
            continue
        info = fields.get("fides_meta" if key == "fidesops_meta" else key)
        classes = model_classes(info.annotation) if info is not None else []
        if len(classes) != 1:
            continue  # free-form (meta) or plain values
        if isinstance(value, list):
            for index, item in enumerate(value):
                found.extend(unknown_keys(classes[0], item, where + label_of(item, index)))
        elif isinstance(value, dict):
            found.extend(unknown_keys(classes[0], value, where))
    return found


def without(raw: Any, locs: List[Tuple[Any, ...]]) -> Any:
    """A copy of `raw` without the values at `locs` (None if one cannot be removed)."""
    copy = copy_module.deepcopy(raw)
    for loc in locs:
        if not loc:
            return None
        node = copy
        for part in loc[:-1]:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        if not isinstance(node, dict) or loc[-1] not in node:
            return None
        del node[loc[-1]]
    return copy


def pydantic_errors(
    res: Resource, error: pydantic.ValidationError, report: Report, seen: set, pruned: set
) -> None:
    for problem in error.errors():
        loc = tuple(problem.get("loc", ()))
        if any(loc[: len(gone)] == gone for gone in pruned):
            continue  # a consequence of leaving out a value already reported
        where = loc_to_path(res.raw, problem.get("loc", ()))
        message = problem.get("msg", "invalid")
        for prefix in ("Assertion failed, ", "Value error, "):
            if message.startswith(prefix):
                message = message[len(prefix):]
        if problem.get("type") == "missing":
            message = "required field is missing"
        line = f"{subject(res)}: {where}: {message}"
        if line not in seen:
            seen.add(line)
            report.error(res.file, line)


def validate_resource(res: Resource, report: Report) -> None:
    """Validate with fideslang's model. When it refuses, report why and validate again
    without the refused values (pydantic stops at field errors before the model-level checks,
    and the references of the rest still deserve checking): every error is reported, and
    `res.model` is the lenient copy, for reference checks only, or None when a required value
    is what is wrong."""
    cls = model_map[res.rtype]
    raw: Any = res.raw
    seen: set = set()
    pruned: set = set()
    for _ in range(6):
        try:
            model = cls.model_validate(raw)
        except pydantic.ValidationError as err:
            pydantic_errors(res, err, report, seen, pruned)
            problems = err.errors()
            if any(problem.get("type") == "missing" for problem in problems):
                return
            locs = [tuple(problem.get("loc", ())) for problem in problems]
            if any(not loc for loc in locs):
                # A model-level check: for a System, the data flows its declarations name.
                if res.rtype != "system":
                    return
                raw = copy_module.deepcopy(raw)
                for decl in raw.get("privacy_declarations") or []:
                    if isinstance(decl, dict):
                        decl.pop("egress", None)
                        decl.pop("ingress", None)
                locs = [loc for loc in locs if loc]
            pruned.update(locs)
            raw = without(raw, locs)
            if raw is None:
                return
            continue
        except Exception as err:  # fideslang validators may raise plain errors too
            hint = ""
            if isinstance(err, TypeError) and "NoneType" in str(err):
                hint = (
                    " (fideslang sorts privacy declarations by name, and fails when some have "
                    "a name and others not: name them all)"
                )
            report.error(res.file, f"{subject(res)}: fideslang fails on it: {type(err).__name__}: {err}{hint}")
            return
        res.model = model
        return


def validate_models(resources: List[Resource], report: Report, allow_unknown: bool) -> None:
    for res in resources:
        cls = model_map[res.rtype]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            validate_resource(res, report)
        for warning in caught:
            report.warn(res.file, f"{subject(res)}: fideslang: {warning.message}")
        for where, model_name in unknown_keys(cls, res.raw, ""):
            message = f"{subject(res)}: {where}: not a field of fideslang's {model_name} model (fideslang drops it)"
            if allow_unknown:
                report.warn(res.file, message)
            else:
                report.error(res.file, message)


# ---------------------------------------------------------------------------------------------
# References


class Index:
    def __init__(self, resources: List[Resource], report: Report) -> None:
        self.defaults: Dict[str, Dict[str, Any]] = {
            rtype: {item.fides_key: item for item in getattr(DEFAULT_TAXONOMY, rtype)}
            for rtype in RESOURCE_TYPES
        }
        self.custom: Dict[str, Dict[str, Resource]] = {rtype: {} for rtype in RESOURCE_TYPES}
        # Keys of resources fideslang refused: already reported, so references to them are not.
        self.refused: Dict[str, set] = {rtype: set() for rtype in RESOURCE_TYPES}
        for res in resources:
            if res.model is None:
                self.refused[res.rtype].add(res.key)
                continue
            seen = self.custom[res.rtype].get(res.key)
            if seen is not None:
                report.error(
                    res.file,
                    f"{subject(res)}: fides_key defined twice (also in {seen.file}); fides would keep only one",
                )
                continue
            if res.rtype in TAXONOMY_TYPES and res.key in self.defaults[res.rtype]:
                report.error(
                    res.file,
                    f"{subject(res)}: redefines an item of fideslang's default taxonomy "
                    "(a Fides server refuses to modify default items); use a sub-key instead",
                )
                continue
            self.custom[res.rtype][res.key] = res

    def check(self, res: Resource, where: str, rtype: str, key: Any, report: Report) -> None:
        if not isinstance(key, str):
            return
        default = self.defaults[rtype].get(key)
        if default is not None:
            if getattr(default, "version_deprecated", None):
                instead = f"; use '{default.replaced_by}'" if default.replaced_by else ""
                report.warn(
                    res.file,
                    f"{subject(res)}: {where}: {KIND_NAMES[rtype]} '{key}' is deprecated since fideslang "
                    f"{default.version_deprecated}{instead}",
                )
            return
        if key in self.custom[rtype] or key in self.refused[rtype]:
            return
        if rtype in TAXONOMY_TYPES:
            hint = (
                f" (define it in a manifest: {rtype}: [{{fides_key: {key}, parent_key: "
                f"{key.rpartition('.')[0] or '...'}}}])"
                if "." in key
                else ""
            )
            report.error(
                res.file,
                f"{subject(res)}: {where}: {KIND_NAMES[rtype]} '{key}' is neither in fideslang "
                f"{fideslang.__version__}'s default taxonomy nor defined in the manifests{hint}",
            )
        else:
            report.error(
                res.file,
                f"{subject(res)}: {where}: {KIND_NAMES[rtype]} '{key}' is not defined in the manifests",
            )

    def check_all(self, res: Resource, where: str, rtype: str, keys: Optional[Iterable[str]], report: Report) -> None:
        for key in keys or []:
            self.check(res, where, rtype, key, report)


def dataset_field_exists(dataset: Dataset, path: str) -> bool:
    """Whether `collection.field[.subfield...]` names a field of `dataset`."""
    parts = path.split(".")
    if len(parts) < 2:
        return False
    collection = next((c for c in dataset.collections if c.name == parts[0]), None)
    if collection is None:
        return False
    fields: Optional[List[DatasetField]] = collection.fields
    for part in parts[1:]:
        found = next((f for f in fields or [] if f.name == part), None)
        if found is None:
            return False
        fields = found.fields
    return True


def check_fields(
    index: Index, res: Resource, where: str, fields: Optional[List[DatasetField]], report: Report
) -> None:
    for fld in fields or []:
        here = f"{where}.fields[{fld.name}]"
        index.check_all(res, f"{here}.data_categories", "data_category", fld.data_categories, report)
        index.check_all(res, f"{here}.data_uses", "data_use", fld.data_uses, report)
        index.check_all(res, f"{here}.data_subjects", "data_subject", fld.data_subjects, report)
        meta = fld.fides_meta
        for ref in (meta.references if meta else None) or []:
            target = index.custom["dataset"].get(ref.dataset)
            if target is None:
                index.check(res, f"{here}.fides_meta.references", "dataset", ref.dataset, report)
            elif not dataset_field_exists(target.model, ref.field):
                report.error(
                    res.file,
                    f"{subject(res)}: {here}.fides_meta.references: dataset '{ref.dataset}' has no field "
                    f"'{ref.field}' (written collection.field)",
                )
        check_fields(index, res, here, fld.fields, report)


def check_collection_key(index: Index, res: Resource, where: str, key: str, report: Report) -> None:
    dataset_key, _, collection = key.partition(".")
    target = index.custom["dataset"].get(dataset_key)
    if target is None:
        index.check(res, where, "dataset", dataset_key, report)
    elif not any(c.name == collection for c in target.model.collections):
        report.error(res.file, f"{subject(res)}: {where}: dataset '{dataset_key}' has no collection '{collection}'")


def check_references(resources: List[Resource], index: Index, report: Report) -> None:
    for res in resources:
        model = res.model
        if model is None:
            continue
        if res.rtype != "organization":
            index.check(res, "organization_fides_key", "organization", model.organization_fides_key, report)
        if res.rtype in TAXONOMY_TYPES:
            parent = getattr(model, "parent_key", None)
            if parent:
                index.check(res, "parent_key", res.rtype, parent, report)
            if model.replaced_by:
                index.check(res, "replaced_by", res.rtype, model.replaced_by, report)
            if model.is_default:
                report.error(
                    res.file,
                    f"{subject(res)}: is_default: a custom item cannot claim to be part of the default "
                    "taxonomy (a Fides server refuses it)",
                )
        elif res.rtype == "dataset":
            check_dataset(index, res, model, report)
        elif res.rtype == "system":
            check_system(index, res, model, report)
        elif res.rtype == "policy":
            check_policy(index, res, model, report)


def check_dataset(index: Index, res: Resource, model: Dataset, report: Report) -> None:
    index.check_all(res, "data_categories", "data_category", model.data_categories, report)
    index.check_all(res, "data_uses", "data_use", model.data_uses, report)
    index.check_all(res, "data_subjects", "data_subject", model.data_subjects, report)
    if model.fides_meta and model.fides_meta.after:
        index.check_all(res, "fides_meta.after", "dataset", model.fides_meta.after, report)
    for coll in model.collections:
        where = f"collections[{coll.name}]"
        index.check_all(res, f"{where}.data_categories", "data_category", coll.data_categories, report)
        index.check_all(res, f"{where}.data_uses", "data_use", coll.data_uses, report)
        index.check_all(res, f"{where}.data_subjects", "data_subject", coll.data_subjects, report)
        meta = coll.fides_meta
        for attr in ("after", "erase_after"):
            for key in (getattr(meta, attr) if meta else None) or []:
                check_collection_key(index, res, f"{where}.fides_meta.{attr}", key, report)
        check_fields(index, res, where, coll.fields, report)


FLOW_TYPES = {"system": "system", "dataset": "dataset"}


def check_system(index: Index, res: Resource, model: System, report: Report) -> None:
    index.check_all(res, "dataset_references", "dataset", model.dataset_references, report)
    for direction in ("egress", "ingress"):
        for flow in getattr(model, direction) or []:
            where = f"{direction}[{flow.fides_key}]"
            if flow.type in FLOW_TYPES:
                index.check(res, where, FLOW_TYPES[flow.type], flow.fides_key, report)
            index.check_all(res, f"{where}.data_categories", "data_category", flow.data_categories, report)
    names = [d.name for d in model.privacy_declarations]
    for decl in model.privacy_declarations:
        where = f"privacy_declarations[{decl.name if decl.name is not None else decl.data_use}]"
        index.check(res, f"{where}.data_use", "data_use", decl.data_use, report)
        index.check_all(res, f"{where}.data_categories", "data_category", decl.data_categories, report)
        index.check_all(res, f"{where}.data_subjects", "data_subject", decl.data_subjects, report)
        index.check_all(res, f"{where}.dataset_references", "dataset", decl.dataset_references, report)
        index.check_all(res, f"{where}.shared_categories", "data_category", decl.shared_categories, report)
        if decl.name and names.count(decl.name) > 1:
            report.error(res.file, f"{subject(res)}: {where}: two privacy declarations share this name")
    pairs = [(d.data_use, d.name or "") for d in model.privacy_declarations]
    for pair in sorted({p for p in pairs if pairs.count(p) > 1}):
        report.error(
            res.file,
            f"{subject(res)}: privacy declarations: data_use '{pair[0]}' with name '{pair[1]}' is declared twice "
            "(a Fides server keys declarations by both)",
        )


PLURALS = {
    "data_category": "data_categories",
    "data_subject": "data_subjects",
    "data_use": "data_uses",
    "dataset": "datasets",
    "system": "systems",
    "policy": "policies",
    "organization": "organizations",
}

POLICY_PARTS = {"data_categories": "data_category", "data_uses": "data_use", "data_subjects": "data_subject"}


def check_policy(index: Index, res: Resource, model: Policy, report: Report) -> None:
    for rule in model.rules:
        for attr, rtype in POLICY_PARTS.items():
            index.check_all(res, f"rules[{rule.name}].{attr}.values", rtype, getattr(rule, attr).values, report)


# ---------------------------------------------------------------------------------------------
# fideslang's own checks, as the fides CLI runs them


def fideslang_cross_check(paths: List[str], resources: List[Resource], report: Report) -> None:
    """Load the manifests the way `fides parse` does, and ask fideslang for missing keys."""
    for path in paths:
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink):
                load_manifests_into_taxonomy(ingest_manifests(path.rstrip("/")))
        except SystemExit as err:
            detail = " ".join(f"{sink.getvalue()} {err}".split())
            report.error(path, f"fideslang's own ingestion (fides parse) refuses these manifests: {detail[:2000]}")
        except Exception as err:
            report.error(path, f"fideslang's own ingestion (fides parse) fails: {err}")
    merged = {rtype: list(getattr(DEFAULT_TAXONOMY, rtype)) for rtype in RESOURCE_TYPES}
    for res in resources:
        if res.model is not None:
            merged[res.rtype].append(res.model)
    missing = get_referenced_missing_keys(Taxonomy(**merged)) - {"user"}  # `user`: a data flow's user
    for key in sorted(missing):
        report.error("(all manifests)", f"fideslang.relationships reports an unresolved fides_key '{key}'")


# ---------------------------------------------------------------------------------------------


def summary(files: int, resources: List[Resource]) -> str:
    counts: Dict[str, int] = {}
    for res in resources:
        counts[res.rtype] = counts.get(res.rtype, 0) + 1
    declarations = sum(len(r.model.privacy_declarations) for r in resources if r.rtype == "system")
    fields = 0
    for res in resources:
        if res.rtype == "dataset":
            for coll in res.model.collections:
                fields += len(coll.fields)
    parts = []
    for rtype in RESOURCE_TYPES:
        if counts.get(rtype):
            n = counts[rtype]
            text = f"{n} {PLURALS[rtype] if n != 1 else rtype}"
            if rtype == "system":
                text += f" ({declarations} privacy declaration{'s' if declarations != 1 else ''})"
            if rtype == "dataset":
                text += f" ({fields} field{'s' if fields != 1 else ''})"
            parts.append(text)
    return (
        f"fides_validate: OK: {files} manifest file{'s' if files != 1 else ''}, "
        f"{', '.join(parts) or 'no resources'}; every reference resolves (fideslang {fideslang.__version__})"
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fides_validate.py",
        description="Validate Fides (fideslang) YAML manifests with fideslang's own models and "
        "check that every fides_key they reference resolves.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a manifest directory (searched recursively) or file")
    parser.add_argument(
        "--allow-unknown-keys",
        action="store_true",
        help="report keys that fideslang's models do not declare (and drop) as warnings, not errors",
    )
    parser.add_argument("--quiet", action="store_true", help="print no warnings")
    args = parser.parse_args(argv)

    report = Report()
    if fideslang.__version__ != PINNED_FIDESLANG:
        report.warn(
            "fides_validate",
            f"fideslang {fideslang.__version__} is installed, this script is pinned to {PINNED_FIDESLANG}: "
            "the default taxonomy may differ",
        )

    resources: List[Resource] = []
    files = 0
    for path in args.paths:
        if not os.path.exists(path):
            parser.error(f"{path}: no such file or directory")
        found = find_manifests(path)
        if not found:
            report.error(path, "no manifests (*.yml, *.yaml) found")
        for full, shown in found:
            files += 1
            resources.extend(read_file(full, shown, report))

    validate_models(resources, report, args.allow_unknown_keys)
    index = Index(resources, report)
    check_references(resources, index, report)
    if not report.errors:
        fideslang_cross_check(args.paths, resources, report)

    if not args.quiet:
        for line in report.warnings:
            print(line, file=sys.stderr)
    if report.errors:
        for line in report.errors:
            print(line, file=sys.stderr)
        count = len(report.errors)
        print(
            f"fides_validate: FAILED: {count} problem{'s' if count != 1 else ''} "
            f"({files} manifest file{'s' if files != 1 else ''} read; fideslang {fideslang.__version__})",
            file=sys.stderr,
        )
        return 1
    print(summary(files, resources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
