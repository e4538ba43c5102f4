"""Study files: TOML -> a validated, frozen StudySpec (the dataclasses are in search/spec.py).

Every check runs before anything touches storage. A problem raises UsageError with one line:
`<file>: <key>: <what is wrong>; <what is allowed>`. The parsed spec is stored with the study
(`StudySpec.to_dict()`), and parsing that dict again gives the same spec, so every later command
needs only the storage and the study name.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpsearch.algorithms import DEFAULT_PRUNER
from hpsearch.algorithms import MEDIAN_PRUNER
from hpsearch.algorithms import MULTI_OBJECTIVE_PRUNERS
from hpsearch.algorithms import PRUNERS
from hpsearch.algorithms import SAMPLERS
from hpsearch.algorithms import Algorithm
from hpsearch.algorithms import option_type_problem
from hpsearch.errors import UsageError
from hpsearch.models import MODELS
from hpsearch.models import NETWORK
from hpsearch.models import CustomModelError
from hpsearch.models import is_user_code
from hpsearch.models import resolve
from hpsearch.models.constraints import AnyValue
from hpsearch.models.constraints import Interval
from hpsearch.models.custom import is_custom
from hpsearch.models.data import DATASETS
from hpsearch.models.data import PREPROCESS
from hpsearch.models.data import is_npz_path
from hpsearch.models.network import NetworkEntry
from hpsearch.models.torch_training import torch_installed
from hpsearch.params_file import ParamsReader
from hpsearch.spec import ACCURACY
from hpsearch.spec import COSTS
from hpsearch.spec import AlgorithmSpec
from hpsearch.spec import DataSpec
from hpsearch.spec import ModelSpec
from hpsearch.spec import ParamSpec
from hpsearch.spec import StopSpec
from hpsearch.spec import StudySpec
from hpsearch.tables import did_you_mean
from hpsearch.tables import kind_of

DIRECTIONS = ("maximize",)  # the objective is validation accuracy
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Study names become folder names (retrained/NAME-trialN) and database keys: keep them short.
MAX_NAME_LENGTH = 128


def name_problem(name: object) -> str | None:
    """Why `name` cannot be a study name, or None."""
    if isinstance(name, str) and _NAME.fullmatch(name) and len(name) <= MAX_NAME_LENGTH:
        return None
    shown = repr(name) if not isinstance(name, str) or len(name) <= 40 else repr(name[:40] + "...")
    return (
        f"got {shown}; allowed: up to {MAX_NAME_LENGTH} letters, digits, '_', '.' and '-', "
        "starting with a letter or digit"
    )


_SECTIONS = ("study", "data", "model", "params", "enqueue", "slurm")  # [slurm]: search/slurm.py
_STUDY_KEYS = (
    "name",
    "n_trials",
    "direction",
    "seed",
    "timeout",
    "trial_timeout",
    "stop",
    "warm_start",
    "objectives",
    "sampler",
    "pruner",
)
_STOP_KEYS = ("patience", "min_delta")
_DATA_KEYS = ("dataset", "val_fraction", "test_fraction", "preprocess")
_MODEL_KEYS = ("kind", "fixed")
_FRACTION = Interval(0.0, 1.0, low_open=True, high_open=True)


def load_study_file(path: str | Path) -> StudySpec:
    """Read and validate a study file; UsageError names the file and the key on any problem."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"{source}: no such file; give the path of a study .toml file") from None
    except IsADirectoryError:
        raise UsageError(
            f"{source}: is a directory; give the path of a study .toml file"
        ) from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{source}: not UTF-8 text ({e.reason}); save it as UTF-8") from None
    except OSError as e:
        raise UsageError(f"{source}: cannot be read: {e.strerror}") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some Windows editors write
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{source}: invalid TOML: {e}; fix the syntax") from None
    return parse_study(doc, source, Path(path).resolve().parent)


def parse_study(
    doc: Mapping[str, Any], source: str, base_dir: Path | None = None, *, stored: bool = False
) -> StudySpec:
    """Validate a parsed TOML document (or a stored spec dict) and build the StudySpec.

    `base_dir` is where a relative `file.py:Class` kind starts (the study file's folder).
    `stored`: the spec stored with a study, checked in full when the study was created. It is
    read without importing the user's code, without PyTorch and without the files it named:
    `show`, `report`, `export` and `studies` work on any machine that reaches the database.
    """
    return _StudyReader(source, base_dir, stored=stored).study(doc)


def parse_configuration(
    data: Any, model: Mapping[str, Any], source: str
) -> tuple[DataSpec, ModelSpec]:
    """Validate one configuration (an export's `data` and a model's kind and every argument)
    with the same checks as a study file's [data] and [model] sections."""
    parser = _StudyReader(source)
    return parser.data(data), parser.model(model)


class _Anything(dict):
    """The arguments of a user's model in a stored spec: every name, any value."""

    def __contains__(self, name: object) -> bool:
        return True

    def __getitem__(self, name: str) -> AnyValue:
        return AnyValue()


class _StudyReader(ParamsReader):
    """A whole study file (or a stored spec): its sections, in the order they depend on."""

    def __init__(self, source: str, base_dir: Path | None = None, stored: bool = False) -> None:
        super().__init__(source)
        self.base_dir = base_dir or Path.cwd()  # where relative file paths in the file start
        self.stored = stored  # a stored spec: the user's code is not imported (parse_study)

    def study(self, doc: Mapping[str, Any]) -> StudySpec:
        self.sections(doc)
        study = self.table(doc["study"], "[study]", _STUDY_KEYS)
        data = self.data(doc.get("data", {}))
        model = self.model(doc["model"])
        arguments = self.arguments(model.kind, dict(model.fixed))
        params = self.params(doc.get("params", {}), model, arguments)
        self.early_stopping_possible(model, params)
        enqueue = self.enqueue(doc.get("enqueue", []), params)
        name, n_trials = self.name_and_budget(study, len(enqueue))
        direction = study.get("direction", "maximize")
        if direction not in DIRECTIONS:
            self.fail(
                "[study].direction",
                f"got {direction!r}; allowed: {', '.join(DIRECTIONS)} "
                "(the objective is validation accuracy)",
            )
        seed = self.check(study.get("seed", 0), Interval(0, None, integer=True), "[study].seed")
        timeout = study.get("timeout")
        if timeout is not None:
            self.check(timeout, Interval(0.0, None, low_open=True), "[study].timeout")
        trial_timeout = study.get("trial_timeout")
        if trial_timeout is not None:
            self.check(trial_timeout, Interval(0.0, None, low_open=True), "[study].trial_timeout")
        stop = self.stop(study["stop"]) if "stop" in study else None
        warm_start = self.warm_start(study["warm_start"], name) if "warm_start" in study else None
        objectives = self.objectives(study.get("objectives", [ACCURACY]))
        sampler = self.algorithm(study.get("sampler", "tpe"), "[study].sampler", SAMPLERS)
        default = DEFAULT_PRUNER if len(objectives) == 1 else MEDIAN_PRUNER
        pruner = self.algorithm(study.get("pruner", default), "[study].pruner", PRUNERS)
        if len(objectives) > 1 and pruner.type not in MULTI_OBJECTIVE_PRUNERS:
            self.fail(
                "[study].pruner",
                f"{pruner.type} cannot prune a multi-objective study; allowed there: "
                f"{', '.join(MULTI_OBJECTIVE_PRUNERS)}",
            )
        spec = StudySpec(
            name=name,
            n_trials=n_trials,
            direction=direction,
            seed=seed,
            timeout=float(timeout) if timeout is not None else None,
            trial_timeout=float(trial_timeout) if trial_timeout is not None else None,
            stop=stop,
            warm_start=warm_start,
            objectives=objectives,
            enqueue=enqueue,
            sampler=sampler,
            pruner=pruner,
            data=data,
            model=model,
            params=params,
            source=self.source,
        )
        self.buildable(spec)
        return spec

    def sections(self, doc: Mapping[str, Any]) -> None:
        for name in doc:
            if name not in _SECTIONS:
                sections = [f"[{s}]" for s in _SECTIONS]
                self.fail(f"[{name}]", self.unknown("section", f"[{name}]", sections))
        if "study" not in doc:
            self.fail("[study]", "missing; add a [study] section with name and n_trials")
        if "model" not in doc:
            self.fail("[model]", 'missing; add a [model] section with kind = "..."')

    def name_and_budget(self, study: dict[str, Any], n_enqueued: int) -> tuple[str, int]:
        name = self.required(study, "name", "[study].name", '"a-study-name"')
        problem = name_problem(name)
        if problem is not None:
            self.fail("[study].name", problem)
        n_trials = self.required(study, "n_trials", "[study].n_trials", "a whole number >= 1")
        self.check(n_trials, Interval(1, None, integer=True), "[study].n_trials")
        if n_enqueued > n_trials:
            self.fail(
                "[[enqueue]]",
                f"{n_enqueued} tables, more than [study].n_trials = {n_trials} trials can try; "
                "drop some, or raise n_trials",
            )
        return name, n_trials

    def objectives(self, value: Any) -> tuple[str, ...]:
        """[study].objectives: "val_accuracy" first, then the costs weighed against it."""
        key = "[study].objectives"
        allowed = f'allowed: ["{ACCURACY}"] followed by any of {", ".join(COSTS)}'
        if (
            not isinstance(value, list)
            or not value
            or value[0] != ACCURACY
            or len(set(map(str, value))) != len(value)
        ):
            self.fail(key, f"got {value!r}; {allowed}, each once")
        for cost in value[1:]:
            if cost not in COSTS:
                self.fail(key, f"got {cost!r}{did_you_mean(cost, COSTS)}; {allowed}")
        return tuple(value)

    def warm_start(self, value: Any, own_name: str) -> str:
        """[study].warm_start: another study's name (same storage), or an export's .json file
        (relative to the study file's folder; stored as an absolute path)."""
        key = "[study].warm_start"
        allowed = 'allowed: another study\'s name or an export file, e.g. "best.json"'
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"got {value!r}; {allowed}")
        if value.endswith(".json"):
            path = (self.base_dir / value).resolve()
            if not path.is_file() and not self.stored:
                self.fail(key, f"{path}: no such file; {allowed}")
            return str(path)
        if value == own_name:
            self.fail(key, f"got {value!r}, this study itself; {allowed}")
        problem = name_problem(value)
        if problem is not None:
            self.fail(key, problem)
        return value

    def stop(self, value: Any) -> StopSpec:
        stop = self.table(value, "[study].stop", _STOP_KEYS)
        patience = self.required(stop, "patience", "[study].stop.patience", "a whole number >= 1")
        self.check(patience, Interval(1, None, integer=True), "[study].stop.patience")
        min_delta = stop.get("min_delta", "noise")
        if min_delta != "noise":
            problem = Interval(0.0, 1.0).check(min_delta)
            if problem is not None:
                self.fail(
                    "[study].stop.min_delta",
                    f"{problem.split('; allowed')[0]}; allowed: a number from 0 to 1 (points of "
                    'validation accuracy) or "noise" (its standard error)',
                )
            min_delta = float(min_delta)
        return StopSpec(patience=patience, min_delta=min_delta)

    def data(self, value: Any) -> DataSpec:
        data = self.table(value, "[data]", _DATA_KEYS)
        defaults = DataSpec()
        dataset = data.get("dataset", defaults.dataset)
        if not (isinstance(dataset, str) and is_npz_path(dataset)):
            dataset = self.choice(
                dataset, list(DATASETS) + ["path/to/file.npz"], "[data].dataset", "dataset"
            )
        fractions = {}
        for name in ("val_fraction", "test_fraction"):
            value = data.get(name, getattr(defaults, name))
            fractions[name] = float(self.check(value, _FRACTION, f"[data].{name}"))
        preprocess = self.choice(
            data.get("preprocess", defaults.preprocess),
            PREPROCESS,
            "[data].preprocess",
            "preprocessing",
        )
        return DataSpec(dataset=dataset, preprocess=preprocess, **fractions)

    def model(self, value: Any) -> ModelSpec:
        model = self.table(value, "[model]", _MODEL_KEYS)
        kind = self.required(model, "kind", "[model].kind", '"numpy.softmax" (or another model)')
        if isinstance(kind, str) and is_custom(kind):
            kind = self.custom(kind)
            if self.stored:
                return ModelSpec(kind=kind, fixed=dict(model.get("fixed", {})))
        elif kind not in (*MODELS, NETWORK):
            allowed = [*MODELS, NETWORK, "package.module:Class", "path/to/file.py:Class"]
            self.fail("[model].kind", self.unknown("model", kind, allowed))
        if kind == NETWORK and self.stored:
            return ModelSpec(kind=kind, fixed=dict(model.get("fixed", {})))
        torch_kind = kind == NETWORK or (kind in MODELS and MODELS[kind].needs_torch())
        if torch_kind and not torch_installed() and not self.stored:
            self.fail(
                "[model].kind",
                f"{kind} needs PyTorch, which is not installed; pip "
                "install torch==2.13.0 (the CPU build), or choose a numpy.* model",
            )
        fixed = model.get("fixed", {})
        if kind == NETWORK:
            fixed = self.network(fixed)
        arguments = self.arguments(kind, fixed)
        fixed = self.table(fixed, "[model].fixed", tuple(arguments))
        for name, value in fixed.items():
            problem = arguments[name].check(value)
            if problem is not None:
                self.fail(f"[model].fixed.{name}", problem)
        return ModelSpec(kind=kind, fixed=dict(fixed))

    def network(self, fixed: Any) -> dict[str, Any]:
        """torch.network's function, named by [model].fixed.network: checked now."""
        if not isinstance(fixed, dict) or not isinstance(fixed.get("network"), str):
            self.fail(
                "[model].fixed.network",
                'missing; torch.network needs network = "module:function" or '
                '"file.py:function" (a function (input_shape, n_classes, ...) -> nn.Module)',
            )
        network = self.absolute(fixed["network"])
        try:
            NetworkEntry(network).function()
        except CustomModelError as e:
            self.fail("[model].fixed.network", f"{e}")
        return {**fixed, "network": network}

    def absolute(self, target: str) -> str:
        """`file.py:Name` relative to the study file's folder, made absolute."""
        module, _, name = target.rpartition(":")
        if module.endswith(".py"):
            path = Path(module).expanduser()
            if not path.is_absolute():
                path = (self.base_dir / path).resolve()
            return f"{path}:{name}"
        return target

    def early_stopping_possible(self, model: ModelSpec, params: tuple[ParamSpec, ...]) -> None:
        """Early stopping restores the best epoch's weights: a user's class needs
        get_weights() and set_weights() for it."""
        if self.stored or not is_custom(model.kind):
            return
        entry = resolve(model.kind, dict(model.fixed))
        if entry.can_keep_weights():
            return
        searched = [p for p in params if p.name == "patience"]
        if model.fixed.get("patience", 0) or searched:
            key = "[params].patience" if searched else "[model].fixed.patience"
            self.fail(
                key,
                f"early stopping keeps the best epoch's weights, and {entry.class_name} has no "
                "get_weights() and set_weights(); add them to the class, or drop patience",
            )

    def custom(self, kind: str) -> str:
        """A user's class: a file path is made absolute (relative to the study file's folder),
        and the class is imported and checked now, before anything touches storage."""
        kind = self.absolute(kind)
        if self.stored:
            return kind
        try:
            resolve(kind).load()
        except CustomModelError as e:
            self.fail("[model].kind", f"{e}")
        return kind

    def arguments(self, kind: str, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.stored and is_user_code(kind):
            return _Anything()  # checked against the code when the study was created
        try:
            return resolve(kind, fixed).arguments()
        except CustomModelError as e:
            self.fail("[model].kind", f"{e}")

    def algorithm(self, value: Any, key: str, registry: dict[str, Algorithm]) -> AlgorithmSpec:
        if isinstance(value, str):
            value = {"type": value}
        if not isinstance(value, dict):
            self.fail(
                key,
                f"got {kind_of(value)}; allowed: a name or a table such as "
                '{ type = "...", ... }',
            )
        options = dict(value)
        name = options.pop("type", None)
        if name is None:
            self.fail(key, f"missing type; allowed: {', '.join(registry)}")
        name = self.choice(name, list(registry), f"{key}.type", "type")
        algorithm = registry[name]
        missing = algorithm.missing_packages()
        if missing:
            self.fail(
                f"{key}.type",
                f"{name!r} needs the package(s) {', '.join(missing)}; "
                f"pip install {' '.join(missing)}, or choose another type",
            )
        accepted = algorithm.options()
        for option, v in options.items():
            if option not in accepted:
                self.fail(
                    f"{key}.{option}",
                    self.unknown(f"option of {name}", option, list(accepted) or ["(none)"]),
                )
            problem = option_type_problem(accepted[option], v)
            if problem is not None:
                self.fail(f"{key}.{option}", problem)
        return AlgorithmSpec(type=name, options=options)

    def buildable(self, spec: StudySpec) -> None:
        """Build the sampler and pruner once, so Optuna's own checks run now, not in a trial."""
        from hpsearch.algorithms import make_pruner
        from hpsearch.algorithms import make_sampler

        makers = (
            ("[study].sampler", lambda spec: make_sampler(spec, seed=0)),
            ("[study].pruner", make_pruner),
        )
        for key, make in makers:
            try:
                make(spec)
            except UsageError:
                raise
            except (TypeError, ValueError) as e:
                self.fail(
                    key,
                    f"{e}".rstrip(".") + "; see the Optuna documentation of "
                    f"{key.split('.')[-1]} {getattr(spec, key.split('.')[-1]).type!r}",
                )
