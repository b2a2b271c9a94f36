"""Bring other tools' results onto our leaderboard, re-graded by our grader, their verdict kept beside ours.

- ``import_lm_eval(DIR)``: lm-evaluation-harness ``--output_path`` folders written with ``--log_samples``
  (``results_<ts>.json`` + ``samples_<task>_<ts>.jsonl``), for any task with a math answer: ours
  (``stepdpo_*``), ``gsm8k*``, ``minerva_math*``, ``hendrycks_math*`` and anything whose docs carry an answer.
- ``import_step_dpo(FILE)``: the JSON list that the Step-DPO repository's ``eval_math.py`` writes (``prompt``,
  ``completion``, ``extract_answer``, ``prompt_answer``, ``result``).
- ``import_qwen_math(FILE, task=...)``: the jsonl that Qwen2.5-Math's ``math_eval.py`` writes (``idx``,
  ``question``, ``gt``, completions in ``code``, their ``pred`` and ``score``), matched to our task's problems.

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


# ----------------------------------------------------------------------------------------------- Qwen2.5-Math
QWEN_FIELDS = ("idx", "question", "gt", "code", "pred", "score")


def import_qwen_math(
    path: Path, out: Path, task: str, model: str | None = None, data_dir: Path | None = None
) -> RunDir:
    """Import an output file of Qwen2.5-Math's evaluation (``math_eval.py``: one JSON line per problem with
    ``idx``, ``question``, ``gt``, the completions in ``code``, their ``pred`` and ``score``).

    When ``task`` is one of ours and its data loads (``data_dir``, ``STEPDPO_DATA_DIR`` or the Hub), each line is
    matched to our problem ``idx`` (the peer numbers a set's records in file order, as we do) and graded against
    our reading of the gold; a line whose question is not that problem's is refused.  Otherwise the peer's
    ``gt`` is the gold (recorded as such).  Their verdicts are kept beside ours (``other_correct``)."""
    from .tasks import PARSERS, TaskError, load_task

    problems = None
    gold_source = "the file's gt (task not loaded)"
    if task in PARSERS:
        try:
            problems = load_task(task, data_dir).problems
            gold_source = f"our {task} loader"
        except TaskError as exc:
            if data_dir is not None:
                raise ImportFormatError(f"--task {task}: {exc}") from None
    samples: list[dict[str, Any]] = []
    n_problems = 0
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read ({exc.strerror})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(rec, dict):
            raise ImportFormatError(f"{where}: expected a JSON object per line (a Qwen2.5-Math output file)")
        for key in QWEN_FIELDS:
            if key not in rec:
                raise ImportFormatError(
                    f"{where}: missing field {key!r}; not a Qwen2.5-Math output file (needs {', '.join(QWEN_FIELDS)})"
                )
        code, preds, scores = rec["code"], rec["pred"], rec["score"]
        if not isinstance(code, list) or not code or not all(isinstance(c, str) for c in code):
            raise ImportFormatError(f"{where}: field 'code' should be a non-empty list of completions")
        if not isinstance(preds, list) or not isinstance(scores, list) or not len(preds) == len(scores) == len(code):
            raise ImportFormatError(f"{where}: fields 'code', 'pred' and 'score' should be lists of one length")
        if not isinstance(rec["idx"], int) or isinstance(rec["idx"], bool):
            raise ImportFormatError(f"{where}: field 'idx' should be an integer, not {rec['idx']!r}")
        idx = rec["idx"]
        if problems is not None:
            if not 0 <= idx < len(problems):
                raise ImportFormatError(f"{where}: idx {idx} is not a problem of {task} (it has {len(problems)})")
            prob = problems[idx]
            if _squash(prob.question) != _squash(str(rec["question"])):
                raise ImportFormatError(
                    f"{where}: the question of idx {idx} is not {task}'s problem {prob.id}; is --task right?"
                )
            pid, gold, question, subject, level = prob.id, prob.gold, prob.question, prob.subject, prob.level
        else:
            pid, gold, question = f"{task}/{idx}", str(rec["gt"]), str(rec["question"])
            subject, level = rec.get("type") or rec.get("subfield"), rec.get("level")
        n_problems += 1
        for j, (text, theirs, score) in enumerate(zip(code, preds, scores, strict=True)):
            samples.append(
                {
                    "problem_id": pid,
                    "sample_idx": j,
                    "prompt": question,
                    "completion": text,
                    "steps": split_steps(text),
                    "gold": gold,
                    "finish_reason": "stop",
                    "n_tokens": 0,
                    "subject": subject,
                    "level": None if level is None else str(level),
                    "other_correct": bool(score),
                    "other_pred": None if theirs is None else str(theirs),
                    "_question": question,
                }
            )
    if not samples:
        raise ImportFormatError(f"{path}: no records")
    label = model or Path(path).parent.parent.name or Path(path).stem
    identity = {
        "model": {"name_or_path": label, "revision": None, "fingerprint": None},
        "task": {"name": task},
        "source": {"file": _sha(Path(path))},
        "grader_version": GRADER_VERSION,
    }
    their = [s["other_correct"] for s in samples]
    manifest = Manifest(
        run_id="",
        source="qwen2.5-math",
        model=ModelInfo(label, label=label),
        task=TaskInfo(task, "test", n_problems, None, "math", str(path), extra={"gold": gold_source}),
        prompt=PromptInfo(_qwen_prompt_type(Path(path).name)),
        sampling=SamplingInfo(
            "qwen2.5-math/math_eval", None, None, None, max(s["sample_idx"] for s in samples) + 1, None
        ),
        extra={"metrics_source": {"metric": "score", "accuracy": sum(their) / len(their)}, "gold": gold_source},
    )
    return _write_run(out, identity, manifest, samples)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _qwen_prompt_type(name: str) -> str:
    """``test_qwen25-math-cot_-1_seed0_t0.0_s0_e-1.jsonl`` -> ``qwen25-math-cot`` (the peer's file naming)."""
    m = re.match(r"^[a-z]+_(.+?)_-?\d+_seed", name)
    return m.group(1) if m else "qwen2.5-math"
