"""Bring other tools' results onto our leaderboard, re-graded by our grader, their verdict kept beside ours.

- ``import_lm_eval(DIR)``: lm-evaluation-harness ``--output_path`` folders written with ``--log_samples``
  (``results_<ts>.json`` + ``samples_<task>_<ts>.jsonl``), for any task with a math answer: ours
  (``stepdpo_*``), ``gsm8k*``, ``minerva_math*``, ``hendrycks_math*`` and anything whose docs carry an answer.
- ``import_step_dpo(FILE)``: the JSON list that the Step-DPO repository's ``eval_math.py`` writes (``prompt``,
  ``completion``, ``extract_answer``, ``prompt_answer``, ``result``).

Every imported run is an ordinary run directory (``source`` = lm-eval | step-dpo) written to a temporary
directory and renamed into place, so bad input leaves nothing half-written; importing the same file again
replaces the same run (its id hashes the source file).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import __version__
from .grading import GRADER_VERSION, extract_gold, grade_batch, is_equivalent
from .manifest import GraderInfo, Manifest, ModelInfo, PromptInfo, SamplingInfo, TaskInfo
from .metrics import compute_metrics
from .runs import RunDir, make_run_id, now_iso
from .steps import split_steps

LM_EVAL_METRICS = ("acc", "exact_match", "math_verify", "em")


class ImportFormatError(ValueError):
    """Input that is not what the importer reads: one line naming the file and the field."""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_run(out: Path, identity: dict[str, Any], manifest: Manifest, samples: list[dict[str, Any]]) -> RunDir:
    """Grade, compute metrics and write the run atomically (temp dir, then rename)."""
    run_id = make_run_id(identity)
    conv = manifest.task.convention
    questions = [s.pop("_question", None) for s in samples]  # the problem text, for rounding requests
    grades = grade_batch([s["completion"] for s in samples], [s["gold"] for s in samples], conv, questions=questions)
    for s, g in zip(samples, grades, strict=True):
        s.update(run_id=run_id, pred=g.pred, correct=g.correct, reason=g.reason, method=g.method)
    n_other = [s for s in samples if s.get("other_correct") is not None]
    manifest.run_id, manifest.status, manifest.identity = run_id, "done", identity
    manifest.created_at, manifest.updated_at = manifest.created_at or now_iso(), now_iso()
    manifest.grader, manifest.code_version = GraderInfo(GRADER_VERSION), __version__
    manifest.metrics = compute_metrics(samples, lambda a, b: bool(is_equivalent(a, b, conv)))
    manifest.extra["disagreements"] = sum(bool(s["correct"]) != bool(s["other_correct"]) for s in n_other)
    out.mkdir(parents=True, exist_ok=True)
    tmp = RunDir(out / f".importing-{run_id}")
    if tmp.path.exists():
        shutil.rmtree(tmp.path)
    tmp.append_samples(samples)
    tmp.compact(samples)
    tmp.write_manifest(manifest)
    final = out / run_id
    if final.exists():
        shutil.rmtree(final)
    tmp.path.rename(final)
    return RunDir(final)


# ---------------------------------------------------------------------------------------------------- lm-eval
def _lm_eval_pairs(root: Path) -> Iterator[tuple[Path, dict[str, Any], str, Path]]:
    """(results file, its JSON, task, samples file) for every task logged under ``root``."""
    results_files = sorted(Path(root).rglob("results_*.json"))
    if not results_files:
        raise ImportFormatError(f"{root}: no lm-eval results_*.json (run lm_eval with --output_path)")
    for rf in results_files:
        try:
            res = json.loads(rf.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"{rf}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
        for key in ("results", "configs", "config"):
            if key not in res:
                raise ImportFormatError(f"{rf}: missing field {key!r}; not an lm-eval 0.4 results file")
        stamp = rf.stem[len("results_") :]
        for task in res["results"]:
            if task not in res["configs"]:
                continue  # a group's aggregate row
            sf = rf.with_name(f"samples_{task}_{stamp}.jsonl")
            if not sf.is_file():
                raise ImportFormatError(f"{rf}: no {sf.name} beside it (run lm_eval with --log_samples)")
            yield rf, res, task, sf


def _lm_eval_convention(task: str, doc: dict[str, Any]) -> str:
    if "convention" in doc:
        return str(doc["convention"])
    if task.startswith("gsm8k") or "gsm" in task:
        return "gsm8k"
    return "math"


def _lm_eval_gold(task: str, doc: dict[str, Any], target: Any, conv: str, where: str) -> str:
    if "gold" in doc:
        return str(doc["gold"])
    if conv == "gsm8k" and "answer" in doc:
        return extract_gold(str(doc["answer"]), "gsm8k")
    if doc.get("answer"):
        return str(doc["answer"])
    if doc.get("solution") and "\\boxed" in str(doc["solution"]):
        return extract_gold(str(doc["solution"]), "math")
    if isinstance(target, str) and target.strip():
        return extract_gold(target, conv) if conv == "gsm8k" else target
    raise ImportFormatError(f"{where}: task {task!r} has no gold answer (no doc answer/solution, empty target)")


def import_lm_eval(root: Path, out: Path) -> list[RunDir]:
    """Import every task of an lm-eval output folder; all inputs are checked before anything is written."""
    staged = []
    for rf, res, task, sf in _lm_eval_pairs(root):
        cfg = res["config"]
        model_args = cfg.get("model_args") or {}
        if isinstance(model_args, str):
            model_args = dict(kv.split("=", 1) for kv in model_args.split(",") if "=" in kv)
        model = str(model_args.get("pretrained") or res.get("model_name") or cfg.get("model") or "unknown")
        metric = None
        samples: list[dict[str, Any]] = []
        convention = "math"
        first_doc: dict[str, Any] = {}
        with sf.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                where = f"{sf}:{lineno}"
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ImportFormatError(f"{where}: not valid JSON ({exc.msg})") from None
                for key in ("doc_id", "doc", "resps"):
                    if key not in rec:
                        raise ImportFormatError(f"{where}: missing field {key!r}; not an lm-eval --log_samples file")
                doc = rec["doc"]
                first_doc = first_doc or doc
                convention = _lm_eval_convention(task, doc)
                gold = _lm_eval_gold(task, doc, rec.get("target"), convention, where)
                metric = metric or next((m for m in LM_EVAL_METRICS if m in rec), None)
                args = rec.get("arguments") or {}
                first_arg = next(iter(args.values()), {}) if isinstance(args, dict) else (args[0] if args else {})
                prompt = first_arg.get("arg_0", "") if isinstance(first_arg, dict) else str(first_arg[0])
                filtered = rec.get("filtered_resps") or []
                for j, resp in enumerate(
                    rec["resps"][0] if rec["resps"] and isinstance(rec["resps"][0], list) else rec["resps"]
                ):
                    text = str(resp)
                    samples.append(
                        {
                            "problem_id": str(doc.get("id", f"{task}/{rec['doc_id']}")),
                            "sample_idx": j,
                            "prompt": prompt,
                            "completion": text,
                            "steps": split_steps(text),
                            "gold": gold,
                            "finish_reason": "stop",
                            "n_tokens": 0,
                            "subject": doc.get("subject") or doc.get("type"),
                            "level": str(doc.get("level")) if doc.get("level") not in (None, "") else None,
                            "other_correct": bool(rec[metric]) if metric else None,
                            "other_pred": str(filtered[0]) if filtered and not isinstance(filtered[0], list) else None,
                            "_question": doc.get("question") or doc.get("problem") or prompt,
                        }
                    )
        if not samples:
            raise ImportFormatError(f"{sf}: no samples")
        name = str(first_doc.get("task") or task)
        identity = {
            "model": {"name_or_path": model, "revision": model_args.get("revision"), "fingerprint": None},
            "task": {"name": name, "lm_eval_task": task},
            "source": {"file": _sha(sf), "results": _sha(rf)},
            "grader_version": GRADER_VERSION,
        }
        gen = res["configs"][task].get("generation_kwargs") or {}
        manifest = Manifest(
            run_id="",
            source="lm-eval",
            model=ModelInfo(model, model_args.get("revision"), label=Path(model.rstrip("/")).name or model),
            task=TaskInfo(
                name,
                "test",
                len({s["problem_id"] for s in samples}),
                first_doc.get("data_sha256") or (res.get("task_hashes") or {}).get(task),
                convention,
                str(sf),
                extra={"lm_eval_task": task},
            ),
            prompt=PromptInfo(first_doc.get("template") or f"lm-eval:{task}"),
            sampling=SamplingInfo(
                f"lm-eval/{cfg.get('model')}",
                gen.get("temperature", 0.0),
                gen.get("top_p", 1.0),
                gen.get("max_gen_toks"),
                1,
                None,
            ),
            extra={
                "lm_eval_version": res.get("lm_eval_version"),
                "metrics_source": {"metric": metric, **res["results"][task]},
            },
        )
        staged.append((identity, manifest, samples))
    return [_write_run(out, *s) for s in staged]


# --------------------------------------------------------------------------------------------------- Step-DPO
def import_step_dpo(path: Path, out: Path, task: str = "math", model: str | None = None) -> RunDir:
    """Import a Step-DPO ``eval_math.py`` output file (a JSON list of per-problem records)."""
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ImportFormatError(f"{path}: cannot read as JSON ({exc})") from None
    if not isinstance(records, list) or not records:
        raise ImportFormatError(f"{path}: expected a non-empty JSON list of records (eval_math.py output)")
    convention = "gsm8k" if task == "gsm8k" else "odyssey" if task == "odyssey" else "math"
    samples = []
    for i, rec in enumerate(records):
        where = f"{path}: record {i}"
        for key in ("prompt", "completion", "prompt_answer", "result"):
            if key not in rec:
                raise ImportFormatError(f"{where}: missing field {key!r} (have: {', '.join(sorted(rec))})")
        gold = rec["prompt_answer"]
        gold = extract_gold(gold if not isinstance(gold, list) or len(gold) == 1 else gold[0], convention)
        theirs = rec.get("extract_answer")
        samples.append(
            {
                "problem_id": str(rec.get("filepath") or rec.get("idx") or f"{task}/{i}"),
                "sample_idx": 0,
                "prompt": rec["prompt"],
                "completion": rec["completion"],
                "steps": split_steps(rec["completion"]),
                "gold": gold,
                "finish_reason": "stop",
                "n_tokens": 0,
                "subject": rec.get("type"),
                "level": None,
                "other_correct": bool(rec["result"]),
                "other_pred": None if theirs is None else str(theirs),
                "_question": rec.get("question") or rec["prompt"],
            }
        )
    prompt_kind = "qwen2-boxed" if "<|im_start|>" in records[0]["prompt"] else "step-dpo"
    label = model or re.sub(r"\.json$", "", Path(path).name)
    identity = {
        "model": {"name_or_path": label, "revision": None, "fingerprint": None},
        "task": {"name": task},
        "source": {"file": _sha(Path(path))},
        "grader_version": GRADER_VERSION,
    }
    manifest = Manifest(
        run_id="",
        source="step-dpo",
        model=ModelInfo(label, label=label),
        task=TaskInfo(task, "test", len(samples), None, convention, str(path)),
        prompt=PromptInfo(prompt_kind),
        sampling=SamplingInfo("step-dpo/eval_math", None, None, None, 1, None),
        extra={
            "metrics_source": {"metric": "result", "accuracy": sum(bool(r["result"]) for r in records) / len(records)}
        },
    )
    return _write_run(out, identity, manifest, samples)
