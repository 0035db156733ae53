"""Evaluate terraform/ the way `terraform plan` would, without providers: variables (defaults and a
.tfvars file), locals, module calls (with count/for_each), resource arguments and the computed
attributes the configuration reads, with the values the google provider gives them (a service
account's e-mail from its account id, a topic's id from its name, ...). Values only known after
apply (a service's URL) are stand-ins that say so.

The rehearsal reads the deployment from here — each deployable's environment, command, image, source
files and push subscription — instead of restating what Terraform says. It is a model of Terraform's
language (the subset terraform/ uses: an unsupported construct raises, it is never guessed).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import hcl2
from lark import Token, Tree

from tests.rehearsal.images import image_tree

glob_pattern = image_tree.glob_pattern

PROJECT_NUMBER = "123456789012"  # what data.google_project.number stands for


class Unsupported(NotImplementedError):
    pass


# --------------------------------------------------------------------------- parsing


@dataclass
class Block:
    type: str
    labels: list[str]
    attrs: dict[str, Tree]
    blocks: list["Block"]
    line: int = 0

    def nested(self, kind: str) -> list["Block"]:
        return [b for b in self.blocks if b.type == kind]


def _text(node) -> str:
    if isinstance(node, Token):
        return str(node)
    return "".join(_text(c) for c in node.children)


def _label(node) -> str:
    if isinstance(node, Tree) and node.data == "string":
        return "".join(_text(c) for c in node.children if not (isinstance(c, Token) and c == '"'))
    return _text(node)


def _body(tree: Tree) -> tuple[dict, list]:
    attrs, blocks = {}, []
    for child in tree.children:
        if not isinstance(child, Tree):
            continue
        if child.data == "attribute":
            attrs[_text(child.children[0])] = child.children[-1]
        elif child.data == "block":
            parts = [c for c in child.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]
            body = next(c for c in parts if c.data == "body")
            names = [_label(c) for c in parts if c.data != "body"]
            sub_attrs, sub_blocks = _body(body)
            blocks.append(Block(names[0], names[1:], sub_attrs, sub_blocks, getattr(child.meta, "line", 0)))
    return attrs, blocks


def parse(text: str) -> tuple[dict, list]:
    return _body(hcl2.parses_to_tree(text).children[0])


class ModuleSource:
    """The .tf files of one directory."""

    def __init__(self, path: Path):
        self.path = path.resolve()
        self.variables: dict[str, Block] = {}
        self.locals: dict[str, Tree] = {}
        self.resources: dict[tuple[str, str], Block] = {}
        self.data: dict[tuple[str, str], Block] = {}
        self.modules: dict[str, Block] = {}
        self.outputs: dict[str, Block] = {}
        for tf in sorted(self.path.glob("*.tf")):
            _, blocks = parse(tf.read_text())
            for b in blocks:
                if b.type == "variable":
                    self.variables[b.labels[0]] = b
                elif b.type == "locals":
                    self.locals.update(b.attrs)
                elif b.type == "resource":
                    self.resources[(b.labels[0], b.labels[1])] = b
                elif b.type == "data":
                    self.data[(b.labels[0], b.labels[1])] = b
                elif b.type == "module":
                    self.modules[b.labels[0]] = b
                elif b.type == "output":
                    self.outputs[b.labels[0]] = b


def read_tfvars(path: Path) -> dict:
    attrs, _ = parse(path.read_text())
    ev = Evaluator(None)
    return {name: ev.eval(expr, {}) for name, expr in attrs.items()}


# --------------------------------------------------------------------------- values the provider computes


class AfterApply(str):
    """A stand-in for a value only known once a resource exists."""


def _after_apply(text: str) -> str:
    return AfterApply(text)


def _computed(rtype: str, args: dict) -> dict:
    project = args.get("project", "")
    name = args.get("name", "")
    region = args.get("region") or args.get("location", "")
    if rtype == "google_service_account":
        email = f"{args['account_id']}@{project}.iam.gserviceaccount.com"
        return {"email": email, "member": f"serviceAccount:{email}",
                "id": f"projects/{project}/serviceAccounts/{email}", "name": f"projects/{project}/serviceAccounts/{email}"}
    if rtype == "google_storage_bucket":
        return {"url": f"gs://{name}", "id": name}
    if rtype == "google_pubsub_topic":
        return {"id": f"projects/{project}/topics/{name}"}
    if rtype == "google_pubsub_subscription":
        return {"id": f"projects/{project}/subscriptions/{name}"}
    if rtype == "google_compute_network":
        return {"id": f"projects/{project}/global/networks/{name}",
                "self_link": f"https://www.googleapis.com/compute/v1/projects/{project}/global/networks/{name}"}
    if rtype == "google_compute_subnetwork":
        return {"id": f"projects/{project}/regions/{region}/subnetworks/{name}",
                "self_link": f"https://www.googleapis.com/compute/v1/projects/{project}/regions/{region}/subnetworks/{name}"}
    if rtype == "google_cloudfunctions2_function":
        return {"service_config": [{**(args.get("service_config") or [{}])[0],
                                    "uri": _after_apply(f"https://{name}-rehearsal-{region}.a.run.app")}],
                "url": _after_apply(f"https://{region}-{project}.cloudfunctions.net/{name}"),
                "update_time": _after_apply("")}
    if rtype == "google_cloud_run_v2_service":
        return {"uri": _after_apply(f"https://{name}-rehearsal-{region}.a.run.app")}
    if rtype == "google_artifact_registry_repository":
        return {"name": args.get("repository_id", ""),
                "id": f"projects/{project}/locations/{region}/repositories/{args.get('repository_id', '')}"}
    if rtype == "google_project_iam_custom_role":
        return {"name": f"projects/{project}/roles/{args.get('role_id', '')}"}
    if rtype == "google_logging_project_sink":
        return {"writer_identity": _after_apply("serviceAccount:sink-writer@rehearsal.iam.gserviceaccount.com")}
    if rtype == "google_project_service_identity":
        # Provider issue 18649: can be empty; nothing in terraform/ may rely on it.
        return {"email": _after_apply(""), "member": _after_apply("")}
    if rtype == "google_monitoring_notification_channel":
        # Cloud Monitoring assigns the channel's id when it creates it.
        channel = _after_apply(f"projects/{project}/notificationChannels/rehearsal")
        return {"id": channel, "name": channel}
    if rtype == "google_vertex_ai_tensorboard":
        # Vertex assigns the instance's numeric id when it creates it.
        board = _after_apply(f"projects/{PROJECT_NUMBER}/locations/{region}/tensorboards/1234567890")
        return {"name": board, "id": board}
    if rtype == "google_storage_bucket_object":
        return {"media_link": _after_apply("")}
    if rtype == "google_firebase_web_app":
        # Firebase assigns the app id (1:<project number>:web:<hash>) when it creates the app.
        return {"app_id": _after_apply(f"1:{PROJECT_NUMBER}:web:rehearsal"), "api_key_id": _after_apply("")}
    return {}


def _data(dtype: str, args: dict, source_dir: Path) -> dict:
    if dtype == "google_project":
        return {"number": PROJECT_NUMBER, "project_id": args.get("project_id", "")}
    if dtype == "google_firebase_web_app_config":
        # The web app's public configuration, read once the app exists.
        project = args.get("project", "")
        return {"api_key": _after_apply("AIza-rehearsal-web-api-key"), "auth_domain": f"{project}.firebaseapp.com",
                "project": project, "web_app_id": args.get("web_app_id", "")}
    if dtype == "google_storage_project_service_account":  # the bucket project's Cloud Storage service agent
        email = f"service-{PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"
        return {"email_address": email, "member": f"serviceAccount:{email}"}
    if dtype == "archive_file":
        return {"output_sha256": _after_apply("sha256"), "output_path": args.get("output_path", "")}
    raise Unsupported(f"data source {dtype}")


# --------------------------------------------------------------------------- references


class Ref:
    def attr(self, name: str) -> Any:
        raise Unsupported(f"{type(self).__name__}.{name}")

    def index(self, key: Any) -> Any:
        raise Unsupported(f"{type(self).__name__}[{key!r}]")


@dataclass
class Namespace(Ref):
    lookup: Any

    def attr(self, name):
        return self.lookup(name)


@dataclass
class Collection(Ref):
    """resource/data type namespace: google_service_account.sa -> instances."""

    lookup: Any

    def attr(self, name):
        return self.lookup(name)


# --------------------------------------------------------------------------- the evaluator


class Evaluator:
    """Evaluates expressions of one module instance (None: no module, for .tfvars)."""

    def __init__(self, instance: Optional["Instance"]):
        self.instance = instance

    # ------------------------------------------------------------------ expressions

    def eval(self, node, scope: dict) -> Any:
        if isinstance(node, Token):
            raise Unsupported(f"token {node!r}")
        kind = node.data
        children = [c for c in node.children if not (isinstance(c, Tree) and c.data == "new_line_or_comment")]
        if kind == "expr_term":
            inner = [c for c in children if isinstance(c, Tree)]
            if len(inner) != 1:
                raise Unsupported(f"expr_term {node}")
            return self.eval(inner[0], scope)
        if kind == "literal_value":
            return {"true": True, "false": False, "null": None}[_text(node)]
        if kind == "int_lit":
            return int(_text(node))
        if kind == "float_lit":
            return float(_text(node))
        if kind == "string":
            return self._template(children, scope)
        if kind in ("heredoc_template", "heredoc_template_trim"):
            return self._heredoc(_text(node), kind.endswith("trim"), scope)
        if kind == "identifier":
            return self._root(_text(node), scope)
        if kind == "get_attr_expr_term":
            target = self.eval(children[0], scope)
            name = _text([c for c in children[1].children if isinstance(c, Tree)][0])
            return self._get(target, name)
        if kind == "index_expr_term":
            target = self.eval(children[0], scope)
            idx = children[1]
            if idx.data == "short_index":
                key = int(_text(idx.children[-1]))
            else:
                key = self.eval([c for c in idx.children if isinstance(c, Tree) and c.data != "new_line_or_comment"][0], scope)
            return self._index(target, key)
        if kind == "function_call":
            name = _text(children[0])
            args_node = next((c for c in children if isinstance(c, Tree) and c.data == "arguments"), None)
            raw = [c for c in args_node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"] if args_node else []
            return self._call(name, raw, scope)
        if kind == "tuple":
            return [self.eval(c, scope) for c in children if isinstance(c, Tree)]
        if kind == "object":
            out = {}
            for elem in (c for c in children if isinstance(c, Tree) and c.data == "object_elem"):
                key_node = elem.children[0]
                value_node = elem.children[-1]
                out[self._key(key_node, scope)] = self.eval(value_node, scope)
            return out
        if kind == "conditional":
            parts = [c for c in children if isinstance(c, Tree)]
            return self.eval(parts[1] if self.eval(parts[0], scope) else parts[2], scope)
        if kind == "binary_op":
            left = self.eval(children[0], scope)
            term = children[1]
            op = _text(term.children[0]).strip()
            right = self.eval([c for c in term.children if isinstance(c, Tree) and c.data not in
                               ("binary_operator", "new_line_or_comment")][0], scope)
            return _binary(op, left, right)
        if kind == "unary_op":
            op = _text(children[0])
            value = self.eval(children[1], scope)
            return (not value) if op == "!" else -value
        if kind in ("for_tuple_expr", "for_object_expr"):
            return self._for(kind, children, scope)
        raise Unsupported(f"expression {kind}")

    def _key(self, key_node: Tree, scope: dict) -> str:
        inner = key_node.children[0]
        if isinstance(inner, Tree) and inner.data == "expr_term":
            sub = [c for c in inner.children if isinstance(c, Tree)]
            if len(sub) == 1 and sub[0].data == "identifier" and len(inner.children) == 1:
                return _text(sub[0])
        if isinstance(inner, Tree) and inner.data == "keyword":
            return _text(inner)
        return str(self.eval(inner, scope))

    def _template(self, parts, scope) -> str:
        out = []
        for part in parts:
            if isinstance(part, Token):
                continue  # the quotes
            for piece in part.children:
                if isinstance(piece, Token):
                    if piece.type == "ESCAPED_INTERPOLATION":
                        out.append(str(piece)[1:])
                    else:
                        out.append(_unescape(str(piece)))
                elif piece.data == "interpolation":
                    value = self.eval([c for c in piece.children if isinstance(c, Tree)][0], scope)
                    out.append(_to_string(value))
                else:
                    raise Unsupported(f"template directive {piece.data}")
        return "".join(out)

    def _heredoc(self, raw: str, trim: bool, scope) -> str:
        lines = raw.split("\n")[1:-2]
        if trim:
            indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
            lines = [line[indent:] for line in lines]
        text = "\n".join(lines) + "\n"

        def interpolate(match):
            attrs, _ = parse(f"x = {match.group(1)}\n")
            return _to_string(self.eval(attrs["x"], scope))

        return re.sub(r"\$\{([^}]*)\}", interpolate, text)

    def _for(self, kind, children, scope):
        intro = next(c for c in children if isinstance(c, Tree) and c.data == "for_intro")
        names = [_text(c) for c in intro.children if isinstance(c, Tree) and c.data == "identifier"]
        collection = self.eval([c for c in intro.children if isinstance(c, Tree) and c.data not in
                                ("identifier", "new_line_or_comment")][0], scope)
        exprs = [c for c in children if isinstance(c, Tree) and c.data not in ("for_intro", "for_cond", "new_line_or_comment")]
        cond = next((c for c in children if isinstance(c, Tree) and c.data == "for_cond"), None)
        items = collection.items() if isinstance(collection, dict) else enumerate(collection)
        out_list, out_obj = [], {}
        for key, value in items:
            bound = dict(scope)
            if len(names) == 2:
                bound[names[0]], bound[names[1]] = key, value
            else:
                bound[names[0]] = value
            if cond is not None and not self.eval([c for c in cond.children if isinstance(c, Tree)][0], bound):
                continue
            if kind == "for_tuple_expr":
                out_list.append(self.eval(exprs[0], bound))
            else:
                out_obj[self.eval(exprs[0], bound)] = self.eval(exprs[1], bound)
        return out_list if kind == "for_tuple_expr" else out_obj

    # ------------------------------------------------------------------ references

    def _root(self, name: str, scope: dict):
        if name in scope:
            return scope[name]
        inst = self.instance
        if inst is None:
            raise Unsupported(f"reference {name} outside a module")
        if name == "var":
            return Namespace(inst.var)
        if name == "local":
            return Namespace(inst.local)
        if name == "module":
            return Namespace(inst.module_call)
        if name == "path":
            return {"module": str(inst.source.path), "root": str(inst.root_path), "cwd": os.getcwd()}
        if name == "data":
            return Namespace(lambda dtype: Collection(lambda dname: inst.data_instances(dtype, dname)))
        if name == "terraform":
            return {"workspace": "default"}
        if name.startswith(("google_", "archive_", "terraform_data")):
            return Collection(lambda rname: inst.resource_instances(name, rname))
        raise Unsupported(f"reference {name}")

    @staticmethod
    def _get(target, name):
        if isinstance(target, Ref):
            return target.attr(name)
        if isinstance(target, dict):
            if name not in target:
                raise KeyError(f"no attribute {name!r} (has {sorted(target)})")
            return target[name]
        raise Unsupported(f"attribute {name} of {type(target).__name__}")

    @staticmethod
    def _index(target, key):
        if isinstance(target, Ref):
            return target.index(key)
        return target[key]

    # ------------------------------------------------------------------ functions

    def _call(self, name: str, raw: list, scope: dict):
        if name in ("try", "can"):
            for node in raw:
                try:
                    value = self.eval(node, scope)
                    return True if name == "can" else value
                except (KeyError, IndexError, TypeError, ValueError):
                    continue
            if name == "can":
                return False
            raise ValueError("try: no argument evaluated")
        args = [self.eval(node, scope) for node in raw]
        fn = FUNCTIONS.get(name)
        if fn is None:
            raise Unsupported(f"function {name}()")
        if name in ("fileset", "file", "abspath", "templatefile"):
            return fn(self.instance, *args)
        return fn(*args)


def _unescape(text: str) -> str:
    return re.sub(r'\\(["\\nrt])', lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1)), text)


def _to_string(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        raise ValueError("null in a string template")
    if isinstance(value, (dict, list)):
        raise ValueError(f"a {type(value).__name__} in a string template")
    return str(value)


def _binary(op, left, right):
    return {
        "==": lambda: left == right, "!=": lambda: left != right, "<": lambda: left < right,
        ">": lambda: left > right, "<=": lambda: left <= right, ">=": lambda: left >= right,
        "+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
        "/": lambda: left / right, "%": lambda: left % right, "&&": lambda: left and right,
        "||": lambda: left or right,
    }[op]()


def fileset(instance, path: str, pattern: str) -> list[str]:
    """Terraform's fileset(): files (not directories) under path matching a doublestar pattern with
    {a,b} alternatives, as paths relative to path, sorted."""
    base = Path(path)
    patterns = _expand_braces(pattern)
    out = set()
    for file in base.rglob("*"):
        if not file.is_file():
            continue
        rel = file.relative_to(base).as_posix()
        if any(glob_pattern(p).fullmatch(rel) for p in patterns):
            out.add(rel)
    return sorted(out)


def _expand_braces(pattern: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [x for alt in m.group(1).split(",") for x in _expand_braces(pattern[:m.start()] + alt + pattern[m.end():])]


def _format(spec: str, *args):
    values = iter(args)
    return re.sub(r"%[sdv%]", lambda m: "%" if m.group(0) == "%%" else _to_string(next(values)), spec)


def _replace(text: str, old: str, new: str) -> str:
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        return re.sub(old[1:-1], re.sub(r"\$(\d)", r"\\\1", new), text)
    return text.replace(old, new)


def _toset(values) -> list:
    return sorted(set(values), key=str)


def _flatten(values) -> list:
    """Terraform's flatten(): nested lists at any depth become one list."""
    return [y for x in values for y in (_flatten(x) if isinstance(x, list) else [x])]


def _merge(*maps):
    out = {}
    for m in maps:
        out.update(m or {})
    return out


FUNCTIONS = {
    "coalesce": lambda *a: next(x for x in a if x not in (None, "")),
    "abspath": lambda inst, p: os.path.abspath(p),
    "fileset": fileset,
    "file": lambda inst, p: Path(p).read_text(),
    "templatefile": lambda inst, p, v: Path(p).read_text(),  # the rules file; variables not substituted
    "merge": _merge,
    "concat": lambda *lists: [x for lst in lists for x in lst],
    "toset": _toset,
    "tolist": list,
    "tomap": dict,
    "keys": lambda m: sorted(m),
    "values": lambda m: [m[k] for k in sorted(m)],
    "lookup": lambda m, k, *d: m.get(k, d[0]) if d else m[k],
    "length": len,
    "flatten": lambda lst: _flatten(lst),
    "contains": lambda lst, v: v in lst,
    "replace": _replace,
    "lower": str.lower,
    "upper": str.upper,
    "join": lambda sep, lst: sep.join(lst),
    "split": lambda sep, s: s.split(sep),
    "element": lambda lst, i: lst[i % len(lst)],
    "format": _format,
    "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
    "jsondecode": json.loads,
    "tostring": _to_string,
    "tonumber": float,
    "distinct": lambda lst: list(dict.fromkeys(lst)),
    "sort": sorted,
    "startswith": str.startswith,
    "endswith": str.endswith,
    "trimprefix": lambda s, p: s[len(p):] if s.startswith(p) else s,
    "trimsuffix": lambda s, p: s[: -len(p)] if p and s.endswith(p) else s,
    "substr": lambda s, o, n: s[o:o + n] if n >= 0 else s[o:],
    "setproduct": lambda *lists: [list(t) for t in itertools.product(*lists)],
    "reverse": lambda lst: list(reversed(lst)),
    "slice": lambda lst, start, end: lst[int(start):int(end)],
    "sha1": lambda s: hashlib.sha1(s.encode()).hexdigest(),
}


# --------------------------------------------------------------------------- module instances


class Instance:
    """One instance of a module with its input values."""

    def __init__(self, source: ModuleSource, inputs: dict, root_path: Path, address: str = ""):
        self.source = source
        self.inputs = inputs
        self.root_path = root_path
        self.address = address
        self.ev = Evaluator(self)
        self._locals: dict = {}
        self._resources: dict = {}
        self._modules: dict = {}
        unknown = set(inputs) - set(source.variables)
        if unknown:
            raise KeyError(f"{address or 'root'}: no variables {sorted(unknown)}")

    # ------------------------------------------------------------------ values

    def var(self, name: str):
        block = self.source.variables.get(name)
        # A caller's null is the variable's value, unless it says nullable = false: then its default.
        nullable = block is None or "nullable" not in block.attrs or self.ev.eval(block.attrs["nullable"], {})
        if name in self.inputs and (self.inputs[name] is not None or nullable):
            return self.inputs[name]
        if block is None:
            raise KeyError(f"{self.address or 'root'}: no variable {name}")
        if "default" not in block.attrs:
            raise KeyError(f"{self.address or 'root'}: variable {name} has no value")
        return self.ev.eval(block.attrs["default"], {})

    def local(self, name: str):
        if name not in self._locals:
            if name not in self.source.locals:
                raise KeyError(f"{self.address or 'root'}: no local {name}")
            self._locals[name] = self.ev.eval(self.source.locals[name], {})
        return self._locals[name]

    def output(self, name: str):
        return self.ev.eval(self.source.outputs[name].attrs["value"], {})

    def outputs_ref(self) -> Ref:
        return Namespace(self.output)

    # ------------------------------------------------------------------ modules

    def module_call(self, name: str):
        if name not in self._modules:
            block = self.source.modules[name]
            child_source = ModuleSource((self.source.path / self.ev.eval(block.attrs["source"], {})))
            meta = {"source", "for_each", "count", "depends_on", "providers", "version"}

            def instance(scope, suffix):
                inputs = {k: self.ev.eval(v, scope) for k, v in block.attrs.items() if k not in meta}
                return Instance(child_source, inputs, self.root_path, f"{self.address}module.{name}{suffix}.")

            self._modules[name] = self._expand(block, instance)
        value = self._modules[name]
        if isinstance(value, dict):
            return {k: v.outputs_ref() for k, v in value.items()}
        if isinstance(value, list):
            return [v.outputs_ref() for v in value]
        return value.outputs_ref()

    def child(self, name: str, key: Any = None) -> "Instance":
        self.module_call(name)
        value = self._modules[name]
        return value if key is None else value[key]

    # ------------------------------------------------------------------ resources

    def _expand(self, block: Block, make):
        if "for_each" in block.attrs:
            each = self.ev.eval(block.attrs["for_each"], {})
            pairs = each.items() if isinstance(each, dict) else ((v, v) for v in each)
            return {k: make({"each": {"key": k, "value": v}}, f'["{k}"]') for k, v in pairs}
        if "count" in block.attrs:
            return [make({"count": {"index": i}}, f"[{i}]") for i in range(int(self.ev.eval(block.attrs["count"], {})))]
        return make({}, "")

    def resource(self, rtype: str, name: str, key: Any = None) -> "Resource":
        value = self._resource_values(rtype, name)
        if key is None:
            if not isinstance(value, Resource):
                raise TypeError(f"{rtype}.{name} has count/for_each: give a key")
            return value
        return value[key]

    def _resource_values(self, rtype, name):
        if (rtype, name) not in self._resources:
            block = self.source.resources.get((rtype, name))
            if block is None:
                raise KeyError(f"{self.address or 'root'}: no resource {rtype}.{name}")
            self._resources[(rtype, name)] = self._expand(block, lambda scope, suffix: Resource(
                self, rtype, f"{self.address}{rtype}.{name}{suffix}", block, scope))
        return self._resources[(rtype, name)]

    def resources(self, rtype: str, name: str) -> list["Resource"]:
        """Every instance of a resource block (count/for_each expanded)."""
        value = self._resource_values(rtype, name)
        return list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, list) else [value]

    def resource_instances(self, rtype: str, name: str):
        value = self._resource_values(rtype, name)
        if isinstance(value, dict):
            return {k: v.ref() for k, v in value.items()}
        if isinstance(value, list):
            return [v.ref() for v in value]
        return value.ref()

    def data_instances(self, dtype: str, name: str):
        block = self.source.data[(dtype, name)]
        args = {k: self.ev.eval(v, {}) for k, v in block.attrs.items() if k not in ("depends_on", "provider")}
        return {**args, **_data(dtype, args, self.source.path)}


class Resource:
    """One resource instance: its configured arguments (evaluated lazily) and computed attributes."""

    def __init__(self, instance: Instance, rtype: str, address: str, block: Block, scope: dict):
        self.instance = instance
        self.type = rtype
        self.address = address
        self.block = block
        self.scope = scope
        self._args: Optional[dict] = None

    def arg(self, name: str):
        return self.instance.ev.eval(self.block.attrs[name], self.scope)

    @property
    def args(self) -> dict:
        """The resource's arguments and blocks (dynamic blocks expanded), evaluated."""
        if self._args is None:
            self._args = self._body(self.block, self.scope)
        return self._args

    def _body(self, block: Block, scope: dict) -> dict:
        meta = {"count", "for_each", "depends_on", "provider", "lifecycle"}
        out = {k: self.instance.ev.eval(v, scope) for k, v in block.attrs.items() if k not in meta}
        for sub in block.blocks:
            if sub.type in ("lifecycle", "provisioner", "connection"):
                continue
            if sub.type == "dynamic":
                target = sub.labels[0]
                each = self.instance.ev.eval(sub.attrs["for_each"], scope)
                iterator = self.instance.ev.eval(sub.attrs["iterator"], scope) if "iterator" in sub.attrs else target
                content = sub.nested("content")[0]
                pairs = each.items() if isinstance(each, dict) else enumerate(each)
                for k, v in pairs:
                    out.setdefault(target, []).append(self._body(content, {**scope, iterator: {"key": k, "value": v}}))
            else:
                out.setdefault(sub.type, []).append(self._body(sub, scope))
        return out

    def ref(self) -> Ref:
        def attr(name):
            computed = _computed(self.type, self.args)
            if name in computed:
                return computed[name]
            if name in self.args:
                return self.args[name]
            raise KeyError(f"{self.address}: no attribute {name}")
        return Namespace(attr)


def load(root: Path, tfvars: Optional[Path] = None) -> Instance:
    """The root module of terraform/ with a .tfvars file's values."""
    inputs = read_tfvars(tfvars) if tfvars else {}
    return Instance(ModuleSource(root), inputs, root.resolve())
