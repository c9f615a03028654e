"""Recipe configs and run directories (pure Python: no torch).

A recipe's config is one dataclass whose fields all carry a one-line doc (:func:`field_doc`).
:func:`load_config` resolves it as ``defaults < YAML preset < key=value overrides`` and
raises :class:`~execrl.errors.DataError` (one line) on any bad key or value before work
starts. :class:`RunDir` holds one run: ``config.json``, ``metrics.jsonl`` and
``checkpoint-<step>/`` directories.

Resume rule: opening an existing run directory with the *same* resolved config resumes it
(from :meth:`RunDir.latest_checkpoint`); a *different* config is an error naming the
first differing key, telling the user to pick another directory or pass ``--force-new``
(``force_new=True``: never resume; start a fresh run in a new sibling directory ``NAME-2``,
``NAME-3``...). Nothing is ever deleted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import os
import re
import shutil
import time
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, TypeVar, Union

from execrl._jsonl import AppendWriter, read_done
from execrl.errors import DataError

__all__ = [
    "RunDir",
    "check_at_least",
    "check_local_path",
    "check_positive",
    "config_help",
    "config_to_dict",
    "field_doc",
    "load_config",
    "preset_command",
]

T = TypeVar("T")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null", "~"}


def field_doc(default: Any, doc: str) -> Any:
    """A dataclass field with a default and its one-line ``--help`` doc (``metadata["help"]``).

    Mutable defaults (lists, dicts, dataclass instances) are copied per instance; a
    dataclass *class* as default means "its defaults"."""
    if "\n" in doc:
        raise ValueError("field docs are one line")
    meta = {"help": doc}
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=default, metadata=meta)
    if isinstance(default, (list, dict, set)) or dataclasses.is_dataclass(default):
        import copy

        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class _Bad(Exception):
    """A value that does not fit its field's type; the caller adds where it came from."""


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # a forward ref we cannot resolve: fall back to the raw annotations
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _fields(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    hints = _hints(cls)
    return {f.name: (f, hints.get(f.name, Any)) for f in dataclasses.fields(cls) if f.init}


def _is_group(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "|".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join("None" if a is type(None) else _type_name(a) for a in args)
    if origin in (list, tuple, dict):
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any) -> Any:
    """``value`` (override text or a YAML value) as type ``tp``, or :class:`_Bad`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    text = value.strip() if isinstance(value, str) else None
    if tp is Any or tp is object:
        return value
    if origin in (Union, types.UnionType):
        if value is None or (text is not None and text.lower() in _NONE):
            if type(None) in args:
                return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a)
            except _Bad:
                pass
        raise _Bad(f"expected {_type_name(tp)}")
    if origin is Literal:
        for choice in args:
            if value == choice or (text is not None and text == str(choice)):
                return choice
            if text is not None and not isinstance(choice, str):  # Literal[1, 2] from text
                with contextlib.suppress(_Bad):
                    if _convert(text, type(choice)) == choice:
                        return choice
        raise _Bad(f"expected one of {', '.join(str(c) for c in args)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if text is not None and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise _Bad("expected a bool (true/false/1/0/yes/no)")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text is not None:
            with contextlib.suppress(ValueError):
                return int(text)
        raise _Bad("expected an int")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if text is not None:  # YAML reads 1e-5 (no dot) as a string, so text is parsed here too
            with contextlib.suppress(ValueError):
                return float(text)
        raise _Bad("expected a float")
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Bad("expected a string (quote it in YAML)")
    if origin in (list, tuple):
        item = args[0] if args else Any
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            raise _Bad(f"fixed-length tuple fields are not supported ({_type_name(tp)})")
        if text is not None:
            items: list[Any] = [p.strip() for p in text.split(",") if p.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise _Bad(f"expected {_type_name(tp)} (a comma list or a YAML list)")
        out = [_convert(x, item) for x in items]
        return out if origin is list else tuple(out)
    if origin is dict:
        vt = args[1] if len(args) == 2 else Any
        if text is not None:
            value = _yaml_text(text)
        if not isinstance(value, dict):
            raise _Bad(f"expected {_type_name(tp)} (a mapping, e.g. {{a: 1}})")
        return {str(k): _convert(v, vt) for k, v in value.items()}
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if text is not None:
            try:
                return tp(text)
            except (TypeError, ValueError):
                pass
    raise _Bad(f"expected {_type_name(tp)}")


def _yaml_text(text: str) -> Any:
    yaml = _yaml()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise _Bad("not a valid YAML mapping") from None


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise DataError("YAML presets need PyYAML: pip install pyyaml") from None
    return yaml


def _leaf_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for name, (_, tp) in _fields(cls).items():
        keys.append(prefix + name)
        if _is_group(tp):
            keys.extend(_leaf_keys(tp, f"{prefix}{name}."))
    return keys


def _unknown(cls: type, key: str) -> str:
    valid = _leaf_keys(cls)
    msg = f"unknown key {key!r}"
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not close:  # a mistyped last part of a dotted key matches better on its own
        last = {k.rsplit(".", 1)[-1]: k for k in valid}
        close = [last[c] for c in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(last), n=1, cutoff=0.75)]
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    if len(valid) <= 25:
        msg += f"; valid keys: {', '.join(valid)}"
    else:
        msg += "; see --help for the valid keys"
    return msg


def _set(cls: type, tree: dict[str, Any], key: str, value: Any, where: str, shown: str | None = None) -> None:
    """Convert ``value`` for dotted ``key`` of ``cls`` and store it in the nested ``tree``."""
    parts = key.split(".")
    owner = cls
    for i, part in enumerate(parts):
        fields = _fields(owner)
        if part not in fields:
            raise DataError(f"{where}{_unknown(cls, key)}")
        tp = fields[part][1]
        if i < len(parts) - 1:
            if not _is_group(tp):
                raise DataError(f"{where}{_unknown(cls, key)}")
            tree = tree.setdefault(part, {})
            owner = tp
            continue
        if _is_group(tp):
            if isinstance(value, dict):
                for k, v in value.items():
                    _set(cls, tree, f"{key}.{k}", v, where)
                return
            raise DataError(f"{where}{key} is a group of settings; set its fields, e.g. {key}.{next(iter(_fields(tp)), 'x')}=...")
        try:
            tree[part] = _convert(value, tp)
        except _Bad as exc:
            raise DataError(f"{where}{shown or f'{key}={value!r}'}: {exc}") from None


def preset_command(path: str) -> str | None:
    """The command a preset's first comment line names (``# execrl train sft --preset ...``)."""
    with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding="utf-8") as f:
        first = f.readline().strip()
        if first.startswith("#"):
            return first.lstrip("#").strip() or None
    return None


def _read_preset(path: str) -> dict[str, Any]:
    yaml = _yaml()
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: no such preset file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a YAML preset") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: cannot read (not UTF-8 text)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise DataError(f"{path}: not valid YAML ({line}{problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping of config keys, got a YAML {type(data).__name__}")
    return data


def _build(cls: type, base: Any, tree: dict[str, Any]) -> Any:
    changes = {}
    for name, value in tree.items():
        if isinstance(value, dict) and _is_group(_fields(cls)[name][1]):
            value = _build(_fields(cls)[name][1], getattr(base, name), value)
        changes[name] = value
    return dataclasses.replace(base, **changes) if changes else base


def _validate(cfg: Any, prefix: str = "") -> None:
    for name, (_, tp) in _fields(type(cfg)).items():
        if _is_group(tp) and dataclasses.is_dataclass(getattr(cfg, name)):
            _validate(getattr(cfg, name), f"{prefix}{name}.")
    hook = getattr(cfg, "validate", None)
    if callable(hook):
        try:
            hook()
        except DataError:
            raise
        except (ValueError, TypeError) as exc:
            raise DataError(f"{prefix}{exc}" if prefix and str(exc) else str(exc)) from None


def load_config(cls: type[T], preset: str | None = None, overrides: typing.Sequence[str] = ()) -> T:
    """Resolve ``cls`` as defaults < YAML ``preset`` < ``key=value`` ``overrides``.

    Preset keys may be nested mappings or dotted; override keys are dotted
    (``generation.temperature=0.7``). Values parse by the field's type. Every problem
    (unknown key, bad value, unreadable preset, a failed ``__post_init__`` or ``validate()``
    on the config or any nested group) raises :class:`DataError` with one line."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    tree: dict[str, Any] = {}
    if preset is not None:
        for key, value in _read_preset(preset).items():
            _set(cls, tree, str(key), value, f"{preset}: ")
    for item in overrides:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise DataError(f"override {item!r}: expected key=value (e.g. lr=1e-5)")
        _set(cls, tree, key, raw, "", item)
    try:
        cfg = _build(cls, cls(), tree)
    except (ValueError, TypeError) as exc:
        raise DataError(f"invalid config: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    _validate(cfg)
    return cfg


def check_local_path(key: str, value: str | None) -> None:
    """For ``validate()`` hooks: raise :class:`DataError` when ``value`` looks like a local
    path (starts with ``/``, ``./``, ``../`` or ``~``) and does not exist. Other values
    (Hugging Face ids like ``Qwen/Qwen2.5-0.5B``) are left for the loader to resolve."""
    if value and value.startswith(("/", "./", "../", "~")) and not os.path.exists(os.path.expanduser(value)):
        raise DataError(f"{key}={value}: no such file or directory")


def check_at_least(cfg: Any, minimum: int, *keys: str) -> None:
    """For ``validate()`` hooks: a one-line :class:`DataError` for the first of ``keys``
    whose value in ``cfg`` is below ``minimum``."""
    for key in keys:
        value = getattr(cfg, key)
        if value < minimum:
            raise DataError(f"{key}={value}: must be " + ("0 or more" if minimum == 0 else f"at least {minimum}"))


def check_positive(cfg: Any, *keys: str) -> None:
    """For ``validate()`` hooks: a one-line :class:`DataError` for the first of ``keys``
    whose value in ``cfg`` is not above 0 (NaN included)."""
    for key in keys:
        value = getattr(cfg, key)
        if not value > 0:
            raise DataError(f"{key}={value}: must be positive")


def _default_text(f: dataclasses.Field, owner: Any) -> str:
    if owner is not None:
        return repr(getattr(owner, f.name))
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return "(required)"


def config_help(cls: type) -> str:
    """Every field of ``cls`` (nested ones dotted) with its type, default and doc, for ``--help``."""
    lines = [f"Settings of {cls.__name__} (set with key=value; nested with group.key=value):"]

    def walk(c: type, owner: Any, prefix: str, indent: str) -> None:
        for name, (f, tp) in _fields(c).items():
            doc = f.metadata.get("help", "")
            if _is_group(tp):  # defaults come from the instance: a group's default may differ from its class's
                lines.append(f"{indent}{prefix}{name}.*  {doc}".rstrip())
                walk(tp, getattr(owner, name, None), f"{prefix}{name}.", indent + "  ")
            else:
                lines.append(f"{indent}{prefix}{name}: {_type_name(tp)} = {_default_text(f, owner)}")
                lines.append(f"{indent}    {doc}".rstrip())

    try:
        default = cls()
    except (TypeError, ValueError):  # required fields: show the declared defaults
        default = None
    walk(cls, default, "", "  ")
    return "\n".join(lines)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON data (nested dataclasses as dicts, tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix[:-1]: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def _first_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    fo, fn = _flat(old), _flat(new)
    for key in list(fn) + [k for k in fo if k not in fn]:
        if fo.get(key, "<missing>") != fn.get(key, "<missing>"):
            return f"{key}: {fo.get(key, '<missing>')!r} in config.json, {fn.get(key, '<missing>')!r} now"
    return None


def _jsonable(x: Any) -> Any:
    item = getattr(x, "item", None)  # 0-d tensors and numpy scalars
    if callable(item):
        return item()
    raise TypeError(f"{type(x).__name__} is not JSON serializable")


_CKPT = re.compile(r"checkpoint-(\d+)")


class RunDir:
    """One training run on disk: ``config.json``, ``metrics.jsonl``, ``checkpoint-<step>/``.

    Make one with :meth:`create`; :attr:`resumed` says whether an existing run with the
    same config was reopened, and :attr:`resume_step` the step of its latest checkpoint
    (0 when none). On resume, metric lines after that step are dropped, since the
    recipe will log those steps again."""

    def __init__(self, path: str, config: dict[str, Any], resumed: bool = False, writes: bool = True) -> None:
        self.path = path
        self.config = config
        self.resumed = resumed
        self.writes = writes  # False in the other processes of a multi-process run: only the main one logs
        self._writer: AppendWriter | None = None
        self.mirrors: list[Any] = []  # objects with log(scalars, step) and close(), e.g. TensorBoard

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.path, "metrics.jsonl")

    @classmethod
    def create(cls, root: str = "runs", name: str | None = None, config: Any = None, *, recipe: str | None = None,
               force_new: bool = False) -> RunDir:
        """A run directory for ``config`` (a dataclass or a dict).

        Without ``name``: a fresh ``ROOT/<recipe>-<YYYYmmdd-HHMMSS>`` (recipe defaults to
        the config class name without ``Config``, lowercased). With ``name`` (a directory
        under ``root``, or an absolute path): created when absent or empty; resumed when
        its ``config.json`` equals ``config``; otherwise :class:`DataError`. ``force_new``
        never resumes: it starts a fresh run in ``NAME`` if free, else ``NAME-2``, ``NAME-3``..."""
        data = config_to_dict(config) if dataclasses.is_dataclass(config) else json.loads(json.dumps(config or {}))
        if name is None:
            if recipe is None and dataclasses.is_dataclass(config):
                recipe = re.sub(r"config$", "", type(config).__name__.lower())
            recipe = recipe or "run"
            return cls._fresh(os.path.join(root, f"{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"), data)
        path = os.path.join(root, os.path.expanduser(name))
        if force_new or not os.path.exists(path) or (os.path.isdir(path) and not os.listdir(path)):
            return cls._fresh(path, data)
        old = cls._read_config(path)
        diff = _first_difference(old, data)
        if diff is None:
            run = cls(path, data, resumed=True)
            run._trim_metrics()
            return run
        raise DataError(f"{path}: holds a run with a different config ({diff}); "
                        "pick another directory or pass --force-new")

    @classmethod
    def open(cls, path: str) -> RunDir:
        """An existing run directory, for reading (its config, metrics and checkpoints)."""
        return cls(path, cls._read_config(path), resumed=True)

    @staticmethod
    def _read_config(path: str) -> dict[str, Any]:
        cfg_path = os.path.join(path, "config.json")
        if not os.path.isdir(path):
            raise DataError(f"{path}: not a directory")
        if not os.path.exists(cfg_path):
            raise DataError(f"{path}: exists and is not a run directory (no config.json); pick another directory")
        try:
            with open(cfg_path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise DataError(f"{cfg_path}: cannot read ({exc})".replace("\n", " ")) from None
        if not isinstance(data, dict):
            raise DataError(f"{cfg_path}: expected a JSON object")
        return data

    @classmethod
    def _fresh(cls, path: str, data: dict[str, Any]) -> RunDir:
        base, n = path, 1
        while os.path.exists(path) and not (os.path.isdir(path) and not os.listdir(path)):
            n += 1
            path = f"{base}-{n}"
        try:
            os.makedirs(path, exist_ok=True)
            tmp = os.path.join(path, "config.json.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
            os.replace(tmp, os.path.join(path, "config.json"))
        except OSError as exc:
            raise DataError(f"{path}: cannot write ({exc.strerror})") from None
        return cls(path, data)

    def _trim_metrics(self) -> None:
        rows = read_done(self.metrics_path)  # also cuts a torn last line
        keep = [r for r in rows if isinstance(r.get("step"), int) and r["step"] <= self.resume_step]
        if len(keep) != len(rows):
            tmp = self.metrics_path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in keep)
            os.replace(tmp, self.metrics_path)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Append ``{"step": step, **metrics}`` to ``metrics.jsonl``, flushed per line.
        Tensor/numpy scalars become numbers; NaN and infinities become ``"NaN"``/``"Infinity"``.
        A no-op when the run does not write (:attr:`writes`)."""
        if not self.writes:
            return
        if self._writer is None:
            read_done(self.metrics_path)  # a crash may have torn the last line
            self._writer = AppendWriter(self.metrics_path, fresh=False)
        # NaN is not valid JSON; as a string a diverged loss stays visible to every reader
        row = json.loads(json.dumps({"step": step, **metrics}, default=_jsonable), parse_constant=str)
        self._writer.write(row)
        if self.mirrors:
            scalars = {k: v for k, v in _flat({k: v for k, v in row.items() if k != "step"}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            for mirror in self.mirrors:
                mirror.log(scalars, step)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The complete lines of ``metrics.jsonl`` (a torn last line is dropped)."""
        return read_done(self.metrics_path)

    @property
    def checkpoints(self) -> list[str]:
        """Paths of the finished ``checkpoint-<step>`` directories, oldest step first."""
        found = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path):
                m = _CKPT.fullmatch(entry.name)
                if m and entry.is_dir():
                    found.append((int(m.group(1)), entry.path))
        return [p for _, p in sorted(found)]

    def latest_checkpoint(self) -> str | None:
        """The checkpoint with the highest step, or None."""
        ckpts = self.checkpoints
        return ckpts[-1] if ckpts else None

    @property
    def resume_step(self) -> int:
        """The step of the latest checkpoint (training resumes after it), or 0."""
        latest = self.latest_checkpoint()
        return int(_CKPT.fullmatch(os.path.basename(latest)).group(1)) if latest else 0

    def checkpoint_path(self, step: int) -> str:
        return os.path.join(self.path, f"checkpoint-{step}")

    @contextlib.contextmanager
    def saving(self, step: int) -> Iterator[str]:
        """Yield a temporary directory to save step ``step`` into; it becomes
        ``checkpoint-<step>`` only when the block finishes, so a crash mid-save never
        leaves a checkpoint that :meth:`latest_checkpoint` would pick."""
        final = self.checkpoint_path(step)
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(tmp, final)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for mirror in self.mirrors:
            mirror.close()
        self.mirrors = []

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
