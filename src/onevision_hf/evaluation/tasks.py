"""Evaluation tasks as data: lmms-eval's task YAML (``dataset_path``, ``doc_to_text``, ``metric_list``, ...) read
without lmms-eval, so the same files run here and under ``lmms-eval --include_path``.

Supported keys: ``task``, ``tag``, ``include``, ``dataset_path`` / ``dataset_name`` / ``dataset_kwargs``
(``data_files``, ``load_from_disk``), ``test_split``, ``output_type`` (``generate_until``), ``doc_to_visual`` /
``doc_to_text`` / ``doc_to_target`` (a column name or a ``!function``), ``generation_kwargs``,
``fewshot_delimiter``, ``process_results``, ``metric_list`` (``aggregation``: ``mean`` or a ``!function``),
``lmms_eval_specific_kwargs`` (the ``default`` entry) and ``score_key``. ``!function name.attr`` loads ``attr`` from
``name.py`` beside the YAML (else the importable module ``name``), as lmms-eval does.

**Where data comes from.** Data is read from local files only. Relative ``data_files`` (and a relative
``load_from_disk`` directory) and relative media paths resolve against the task's *data root*: the folder of the
task file, which is lmms-eval 0.7.3's rule for ``data_files`` (``lmms_eval/utils.py``, ``_resolve_local_data_files``,
line 968), or ``--data-root`` when given; never the working directory. Media paths follow the layout of lmms-eval's
``$HF_HOME`` cache (``videomme/data/<videoID>.mp4``, ...). The bundled tasks sit at the top of `TASKS_DIR` with
their sample data beneath them, so they run from any folder under both runners; the task functions build media
paths with `media_path`, which takes the data root from the ``data_root`` entry `load_task` adds to
``lmms_eval_specific_kwargs`` (lmms-eval adds none: the task file's folder).

**Names.** Bundled tasks are named ``<published task>_local`` and tagged ``onevision_hf_local`` (all of them) and
``mvbench_local`` (the MVBench sub-tasks): none of these names is one of lmms-eval's own tasks or tags, which
would win over an ``--include_path`` task of the same name (``lmms_eval/tasks/__init__.py``, line 72) and read
the hub. `resolve_task_names` accepts task names and tags.

**Generation defaults** are lmms-eval's (`generation_kwargs_with_defaults`).
"""

import difflib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import OneVisionInputError
from .metrics import aggregate_mean, mean_stderr

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
SUPPORTED_OUTPUT_TYPES = ("generate_until",)
DATA_ROOT_KEY = "data_root"  # the lmms_eval_specific_kwargs entry that carries --data-root to the task functions
LMMS_EVAL_FEWSHOT_DELIMITER = "\n\n"  # lmms_eval/api/task.py, line 133: TaskConfig.fewshot_delimiter


def media_path(prompt_kwargs: dict | None, task_dir: Path, *parts: str) -> str:
    """A media file of a task, ``parts`` under its data root: ``prompt_kwargs["data_root"]`` when `load_task` set it
    (``--data-root``, or the task file's folder), else ``task_dir`` (under lmms-eval: the task functions' folder,
    which is the task file's)."""
    root = Path((prompt_kwargs or {}).get(DATA_ROOT_KEY) or task_dir)
    return str(root.joinpath(*parts))


def generation_kwargs_with_defaults(config: dict) -> dict:
    """A task's generation kwargs as lmms-eval 0.7.3 completes them (``lmms_eval/api/task.py``, lines 178-196,
    ``TaskConfig.__post_init__``): ``temperature`` as a float, ``until`` defaulting to ``[fewshot_delimiter]``
    (``"\\n\\n"``), and ``{"until": [...], "do_sample": False}`` for a task that gives none."""
    delimiter = config.get("fewshot_delimiter", LMMS_EVAL_FEWSHOT_DELIMITER)
    kwargs = config.get("generation_kwargs")
    if kwargs is None:
        return {"until": None if delimiter is None else [delimiter], "do_sample": False}
    kwargs = dict(kwargs)
    if "temperature" in kwargs:
        kwargs["temperature"] = float(kwargs["temperature"])
    kwargs.setdefault("until", [delimiter])
    return kwargs


@dataclass(frozen=True)
class Metric:
    name: str
    aggregation: Callable[[list], float]
    higher_is_better: bool = True


@dataclass
class EvalTask:
    """One task: its documents and the named functions that turn a document into a prompt and a score."""

    name: str
    docs: object  # datasets.Dataset of the evaluated split
    data_root: Path
    doc_to_visual: Callable[[dict], list]
    doc_to_text: Callable[[dict], str]
    doc_to_target: Callable[[dict], object]
    process_results: Callable[[dict, list[str]], dict]
    metrics: list[Metric]
    generation_kwargs: dict = field(default_factory=dict)
    score_key: str = "score"

    def __len__(self) -> int:
        return len(self.docs)

    def visuals(self, doc: dict) -> list:
        """The document's images (PIL) and video files (absolute paths)."""
        return [self.data_root / item if isinstance(item, (str, Path)) and not Path(item).is_absolute() else item
                for item in self.doc_to_visual(doc)]

    def aggregate(self, per_doc: list[dict]) -> dict:
        """Per-document metric dicts -> ``{metric: value, "n": documents, "stderr": {metric: value}, "counts":
        {metric: documents scored}}`` (a split metric such as ``videomme_long`` scores only its documents)."""
        result, stderr, counts = {}, {}, {}
        for metric in self.metrics:
            values = [metrics[metric.name] for metrics in per_doc if metric.name in metrics]
            result[metric.name] = float(metric.aggregation(values)) if values else float("nan")
            stderr[metric.name] = mean_stderr([self.doc_score(value) for value in values])
            counts[metric.name] = len(values)
        return {**result, "n": len(per_doc), "stderr": stderr, "counts": counts}

    def doc_score(self, value) -> float:
        """A per-document metric value as a number: itself, or its ``score_key`` entry when it is a dict."""
        return float(value[self.score_key] if isinstance(value, dict) else value)


class _TaskLoader(yaml.SafeLoader):
    """A YAML loader whose ``!function module.name`` resolves against the directory of the file being read."""


def _import_function(loader: _TaskLoader, node) -> Callable:
    module_name, _, function_name = loader.construct_scalar(node).rpartition(".")
    module_path = Path(loader.name).parent / f"{module_name}.py"
    if module_path.is_file():
        spec = importlib.util.spec_from_file_location(f"onevision_hf_tasks.{module_path.parent.name}.{module_name}",
                                                      module_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise OneVisionInputError(f"{loader.name}: {module_path} has no function {function_name!r}.") from None


_TaskLoader.add_constructor("!function", _import_function)


def read_task_yaml(path: Path) -> dict:
    """One task file with its ``include``s merged (the including file wins), functions imported."""
    with open(path, encoding="utf-8") as file:
        loader = _TaskLoader(file)
        loader.name = str(path)
        try:
            config = loader.get_single_data() or {}
        finally:
            loader.dispose()
    includes = config.pop("include", [])
    merged = {}
    for include in [includes] if isinstance(includes, str) else includes:
        merged.update(read_task_yaml(path.parent / include))
    return {**merged, **config}


def resolve_task_names(names: list[str], include_paths: list[Path] = ()) -> list[str]:
    """Task names and tags (``chartqa`` is the tag of ``chartqa_local``, ``mvbench`` of its sub-tasks) -> task
    names, in the order given, each once."""
    index = _task_index(include_paths)
    resolved = []
    for name in names:
        matches = [name] if name in index else [task for task, (_, tags) in index.items() if name in tags]
        if not matches:
            known = sorted(set(index) | {tag for _, tags in index.values() for tag in tags})
            close = [known_name for known_name in known if known_name.startswith(f"{name}_")]
            close = close or difflib.get_close_matches(name, known, n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise OneVisionInputError(f"unknown task {name!r}{hint}; known tasks and tags: {', '.join(known)}.")
        resolved += [task for task in matches if task not in resolved]
    return resolved


@dataclass(frozen=True)
class TaskSummary:
    """What a task file declares, read without importing its functions or loading its data."""

    name: str
    tags: list[str]
    metrics: list[str]
    data_files: list[str]  # as written: relative to the task's data root
    path: Path


def task_summaries(include_paths: list[Path] = ()) -> list[TaskSummary]:
    """Every task of the bundled folder and ``include_paths``, sorted by name."""
    summaries = []
    for name, (path, tags) in sorted(_task_index(include_paths).items()):
        config = _read_yaml_names(path)
        data_files = (config.get("dataset_kwargs") or {}).get("data_files") or config.get("dataset_path") or []
        summaries.append(TaskSummary(name, tags, [entry["metric"] for entry in config.get("metric_list") or []],
                                     _flatten(data_files), path))
    return summaries


def _task_index(include_paths: list[Path]) -> dict[str, tuple[Path, list[str]]]:
    """``{task name: (yaml path, tags)}``, includes followed for the tags."""
    found = {}
    for root in (TASKS_DIR, *map(Path, include_paths)):
        for path in sorted(Path(root).rglob("*.yaml")):
            config = _read_yaml_names(path)
            if isinstance(config.get("task"), str):
                tags = config.get("tag") or []
                found[config["task"]] = (path, [tags] if isinstance(tags, str) else list(tags))
    return found


def _read_yaml_names(path: Path) -> dict:
    """A task file's plain keys (``!function`` lines skipped), includes merged, without importing anything."""
    with open(path, encoding="utf-8") as file:
        config = yaml.safe_load("".join(line for line in file if "!function" not in line)) or {}
    includes = config.pop("include", [])
    merged = {}
    for include in [includes] if isinstance(includes, str) else includes:
        merged.update(_read_yaml_names(path.parent / include))
    return {**merged, **config}


def load_task(name: str, data_root: Path | None = None, include_paths: list[Path] = ()) -> EvalTask:
    """The task ``name`` with its evaluated split loaded from local files under ``data_root`` (default: the folder
    of the task file)."""
    index = _task_index(include_paths)
    if name not in index:
        raise OneVisionInputError(f"unknown task {name!r}; known tasks: {', '.join(sorted(index))}.")
    path = index[name][0]
    config = read_task_yaml(path)
    data_root = (Path(data_root) if data_root is not None else path.parent).resolve()
    if not data_root.is_dir():
        raise OneVisionInputError(f"data root {data_root} is not a directory; pass --data-root.")
    output_type = config.get("output_type", "generate_until")
    if output_type not in SUPPORTED_OUTPUT_TYPES:
        raise OneVisionInputError(f"task {name!r}: output_type {output_type!r} is not one of {SUPPORTED_OUTPUT_TYPES}.")
    prompt_kwargs = {**(config.get("lmms_eval_specific_kwargs") or {}).get("default", {}),
                     DATA_ROOT_KEY: str(data_root)}
    return EvalTask(
        name=name,
        docs=_load_split(name, config, data_root),
        data_root=data_root,
        doc_to_visual=_doc_function(config, "doc_to_visual", prompt_kwargs),
        doc_to_text=_doc_function(config, "doc_to_text", prompt_kwargs),
        doc_to_target=_doc_function(config, "doc_to_target", None),
        process_results=config["process_results"],
        metrics=[_metric(name, entry) for entry in config["metric_list"]],
        generation_kwargs=generation_kwargs_with_defaults(config),
        score_key=config.get("score_key", "score"),
    )


def _load_split(name: str, config: dict, data_root: Path):
    import datasets

    kwargs = dict(config.get("dataset_kwargs") or {})
    split = config.get("test_split", "test")
    if kwargs.pop("load_from_disk", False):
        location = data_root / config["dataset_path"]
        if not location.exists():
            raise OneVisionInputError(f"task {name!r}: saved dataset {location} does not exist.")
        dataset = datasets.load_from_disk(str(location))
    else:
        if "data_files" not in kwargs:
            raise OneVisionInputError(
                f"task {name!r} reads dataset {config.get('dataset_path')!r} from the hub; give it local "
                "dataset_kwargs.data_files (or load_from_disk) to run it offline."
            )
        data_files = _resolve_data_files(kwargs.pop("data_files"), data_root)
        missing = [path for path in _flatten(data_files) if not Path(path).exists()]
        if missing:
            raise OneVisionInputError(f"task {name!r}: data file(s) {missing} not found under {data_root}.")
        dataset = datasets.load_dataset(config["dataset_path"], name=config.get("dataset_name"),
                                        data_files=data_files)
    if split not in dataset:
        raise OneVisionInputError(f"task {name!r}: split {split!r} not in the dataset (has {list(dataset)}).")
    return dataset[split]


def _resolve_data_files(data_files, data_root: Path):
    if isinstance(data_files, dict):
        return {key: _resolve_data_files(value, data_root) for key, value in data_files.items()}
    if isinstance(data_files, list):
        return [_resolve_data_files(value, data_root) for value in data_files]
    return str(data_root / data_files)


def _flatten(data_files) -> list[str]:
    if isinstance(data_files, dict):
        return [path for value in data_files.values() for path in _flatten(value)]
    return list(data_files) if isinstance(data_files, list) else [data_files]


def _doc_function(config: dict, key: str, prompt_kwargs: dict | None) -> Callable[[dict], object]:
    """A column name or a function of (doc) / (doc, lmms_eval_specific_kwargs), as a function of the doc."""
    value = config.get(key)
    if isinstance(value, str):
        return lambda doc: [doc[value]] if key == "doc_to_visual" else doc[value]
    if value is None:
        return lambda doc: []
    if prompt_kwargs is not None and len(inspect.signature(value).parameters) == 2:
        return lambda doc: value(doc, prompt_kwargs)
    return value


def _metric(task: str, entry: dict) -> Metric:
    aggregation = entry.get("aggregation", "mean")
    if aggregation == "mean":
        aggregation = aggregate_mean
    elif not callable(aggregation):
        raise OneVisionInputError(f"task {task!r}, metric {entry['metric']!r}: aggregation must be 'mean' or a "
                                  f"!function, got {aggregation!r}.")
    return Metric(entry["metric"], aggregation, entry.get("higher_is_better", True))
