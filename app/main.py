"""stepdpo-bench leaderboard app (Streamlit): Leaderboard, Compare, Samples, Audit, Training.

Start with ``stepdpo-bench app [--db PATH]`` or ``streamlit run app/main.py -- --db PATH``.  It only reads the
DuckDB index (read-only connections, parameterised queries) and shows model text as text: Markdown with HTML
disabled (LaTeX rendered), or raw.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run app/main.py` from a checkout

from app.data import Data, first_divergence, safe_markdown
from stepdpo_bench.contracts import parse_link
from stepdpo_bench.leaderboard import extraction_summary, safe_cell, subset_note, vs_note
from stepdpo_bench.store import StoreError

PAGES = ("Leaderboard", "Compare", "Samples", "Audit", "Training")


def _db_path() -> Path:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=os.environ.get("STEPDPO_DB", "results/leaderboard.duckdb"))
    args, _ = ap.parse_known_args(sys.argv[1:])
    return Path(args.db)


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}%"


def _run_label(runs: pd.DataFrame, rid: str) -> str:
    r = runs[runs.run_id == rid].iloc[0]
    return f"{r.label} · {r.method or '?'} · {r.task} · {str(r.created_at)[:10]}"


def _suite_section(data: Data) -> None:
    """The reasoning suite as papers print it: a row per model and setting, a column per set, the macro average."""
    from stepdpo_bench.suite import cell_text, setting_text

    sets, rows = data.suite("reasoning")
    if not rows:
        return
    st.subheader("Reasoning suite")
    table = {"model": [r.label for r in rows], "setting": [setting_text(r) for r in rows]}
    for s in sets:
        table[s] = [cell_text(r.cells[s].accuracy, r.cells[s].ci) if s in r.cells else "-" for r in rows]
    table["macro avg"] = [cell_text(*r.macro(sets)) for r in rows]
    table["sets"] = [
        f"{len(r.cells)}/{len(sets)}" + (" (subset runs)" if any(c.subset for c in r.cells.values()) else "")
        for r in rows
    ]
    st.dataframe(pd.DataFrame(table), hide_index=True, use_container_width=True)
    st.caption(
        "Accuracy % [95% CI] per set (avg@n when sampled; the interval counts the problems and the samples), and "
        "the unweighted mean over the sets a model has, with its interval."
    )


def page_leaderboard(data: Data) -> None:
    st.header("Leaderboard")
    _suite_section(data)
    tasks = data.tasks()
    c1, c2, c3 = st.columns(3)
    task = c1.selectbox("Task", ["all", *tasks], key="lb_task")
    df = data.leaderboard(None if task == "all" else task)
    if df.empty:
        st.info("No finished runs for this selection.")
        return
    methods = sorted(m for m in df["method"].dropna().unique())
    picked = c2.multiselect("Method", methods, default=methods, key="lb_methods")
    search = c3.text_input("Search model", key="lb_search")
    df = df[df["method"].isin(picked) | df["method"].isna()]
    if search:
        df = df[df["label"].str.contains(search, case=False, regex=False)]
    view = pd.DataFrame(
        {
            "task": df.task,
            "problems": [subset_note(f) if s else "all" for f, s in zip(df.filters, df.subset, strict=True)],
            "tier": df.tier,
            "model": df.label,
            "method": df.method,
            "base model": df.base_model,
            "accuracy %": (100 * df.accuracy).round(1),
            "95% CI": [f"{_pct(lo)} – {_pct(hi)}" for lo, hi in zip(df.ci_lo, df.ci_hi, strict=True)],
            "vs tier head": [vs_note(r) for r in df.to_dict("records")],
            "n": df.n_problems,
            "samples/problem": df.n,
            "prompt": df.prompt,
            "answers found by": [extraction_summary(x) for x in df.extraction],
            "date": df.created_at.astype(str).str[:10],
            "run": df.run_id,
        }
    )
    if df["steps_locator"].notna().any():  # step columns where some run has step verdicts (stepdpo-bench steps)
        recs = df.to_dict("records")
        view.insert(8, "steps by", df["steps_locator"].fillna(""))
        view.insert(9, "step accuracy % [CI]", [_ci_cell(r, "step_accuracy") for r in recs])
        view.insert(10, "right for wrong reasons % [CI]", [_ci_cell(r, "right_for_wrong_reasons") for r in recs])
        view.insert(11, "first error at step", df["first_error_step"].round(2))
    st.dataframe(view, hide_index=True, use_container_width=True)
    st.caption(
        "Same tier = not significantly worse than the tier's head (paired test on shared problems, Holm-adjusted "
        "over all pairs, α = 0.05), ranked only among runs on the same problem set: do not read the order inside "
        "a tier as progress."
    )
    chart = df.assign(acc=100 * df.accuracy, lo=100 * df.ci_lo, hi=100 * df.ci_hi)[["label", "task", "acc", "lo", "hi"]]
    try:
        import altair as alt

        base = alt.Chart(chart).encode(y=alt.Y("label:N", sort="-x", title=None))
        st.altair_chart(
            (
                base.mark_bar().encode(x=alt.X("acc:Q", title="accuracy %"), color="task:N")
                + base.mark_rule().encode(x="lo:Q", x2="hi:Q")
            ),
            use_container_width=True,
        )
    except ImportError:
        st.bar_chart(chart.set_index("label")["acc"])
    st.download_button("Download CSV", _csv(view), "leaderboard.csv", "text/csv")
    groups = data.groups(None if task == "all" else task)
    if groups:
        st.subheader("Recipe groups (runs of one recipe across seeds)")
        st.dataframe(
            pd.DataFrame(
                {
                    "task": [g.task for g in groups],
                    "group": [g.group for g in groups],
                    "seeds": [len(g.runs) for g in groups],
                    "problems": [g.n_problems for g in groups],
                    "mean accuracy %": [round(100 * g.mean, 1) for g in groups],
                    "95% CI (seeds and problems)": [f"{_pct(g.ci95[0])} – {_pct(g.ci95[1])}" for g in groups],
                    "between-seed SD pts": [
                        round(100 * g.between_seed_sd, 1) if g.between_seed_sd == g.between_seed_sd else None
                        for g in groups
                    ],
                    "per seed %": [" ".join(f"{100 * x:.1f}" for x in g.accuracies) for g in groups],
                }
            ),
            hide_index=True,
            use_container_width=True,
        )


def _ci_cell(r: dict, key: str) -> str:
    v = r.get(key)
    if v is None or v != v:
        return ""
    return f"{100 * v:.1f} [{100 * r[key + '_lo']:.1f}–{100 * r[key + '_hi']:.1f}]"


def _csv(df: pd.DataFrame) -> str:
    """CSV for a spreadsheet: cells that would start a formula (= + - @) are quoted (formula injection)."""
    return df.apply(lambda col: col.map(safe_cell) if col.dtype == object else col).to_csv(index=False)


def _pick_pair(data: Data) -> tuple[str, str] | None:
    runs = data.runs()
    if len(runs) < 2:
        st.info("Need at least two finished runs.")
        return None
    quick = data.dpo_vs_stepdpo_pairs()
    if not quick.empty:
        options = [
            "(choose runs below)",
            *[f"DPO vs Step-DPO on {r.base_model} · {r.task}" for r in quick.itertuples()],
        ]
        choice = st.selectbox("Quick comparison", options, index=1, key="quick")  # DPO vs Step-DPO when it exists
        if choice != options[0]:
            row = quick.iloc[options.index(choice) - 1]
            return row.dpo_run, row.stepdpo_run
    ids = list(runs.run_id)
    a = st.selectbox("Baseline (A)", ids, format_func=lambda r: _run_label(runs, r), key="run_a")
    same_task = [
        r for r in ids if r != a and runs[runs.run_id == r].task.iloc[0] == runs[runs.run_id == a].task.iloc[0]
    ]
    if not same_task:
        st.warning("No other run on the same task.")
        return None
    b = st.selectbox("Candidate (B)", same_task, format_func=lambda r: _run_label(runs, r), key="run_b")
    return a, b


def page_compare(data: Data) -> None:
    st.header("Compare two runs")
    pair = _pick_pair(data)
    if pair is None:
        return
    a, b = pair
    res = data.compare(a, b)
    p = res["paired"]
    c = st.columns(4)
    c[0].metric("A accuracy", _pct(p.acc_a))
    c[1].metric("B accuracy", _pct(p.acc_b), f"{100 * p.diff:+.1f} pts")
    c[2].metric("95% CI of B − A", f"{100 * p.ci95[0]:+.1f} … {100 * p.ci95[1]:+.1f}")
    c[3].metric(f"p ({p.test})", f"{p.p_value:.3g}")
    verdict = ("B is better" if p.diff > 0 else "B is worse") if p.significant else "no significant difference"
    st.write(
        f"On the **{p.n}** problems both runs answered: **{verdict}** (α = 0.05, {p.test}); "
        f"{len(p.fixed)} fixed by B, {len(p.broken)} broken by B."
    )
    ga, gb = data.group_of(a), data.group_of(b)
    if ga and gb and ga != gb:
        task = data.runs()
        task = task[task.run_id == a].task.iloc[0]
        try:
            g = data.compare_groups(ga, gb, task)
        except ValueError as exc:
            st.caption(f"Recipe groups {ga} and {gb}: {exc}")
        else:
            st.info(
                f"Across seeds: group {gb} ({len(g.b.runs)} runs) − group {ga} ({len(g.a.runs)} runs) = "
                f"{100 * g.diff:+.1f} pts, 95% CI {100 * g.ci95[0]:+.1f} … {100 * g.ci95[1]:+.1f} (seeds and "
                f"problems resampled); between-seed SD {100 * g.a.between_seed_sd:.1f} and "
                f"{100 * g.b.between_seed_sd:.1f} pts.  One pair of runs can differ by that much from seeds alone."
            )
    for key in ("by_subject", "by_level"):
        df = res[key]
        if not df.empty:
            label = df.columns[0]
            st.subheader(key.replace("_", " ").title())
            view = pd.DataFrame(
                {
                    label: df[label],
                    "n": df["n"],
                    "A %": (100 * df["acc_a"]).round(1),
                    "B %": (100 * df["acc_b"]).round(1),
                    "B − A pts": (100 * df["diff"]).round(1),
                    "95% CI pts": [f"{100 * lo:+.1f} … {100 * hi:+.1f}" if lo == lo else "-" for lo, hi in df["ci95"]],
                    "p": df["p_value"].round(3),
                    "fixed": df["n_fixed"],
                    "broken": df["n_broken"],
                }
            )
            st.dataframe(view, hide_index=True, use_container_width=True)
            _forest(df, label)
    _compare_steps(data, a, b)
    c1, c2 = st.columns(2)
    c1.subheader(f"Fixed by B ({len(p.fixed)})")
    c1.dataframe(pd.DataFrame({"problem": p.fixed}), hide_index=True)
    c2.subheader(f"Broken by B ({len(p.broken)})")
    c2.dataframe(pd.DataFrame({"problem": p.broken}), hide_index=True)


def _forest(df: pd.DataFrame, label: str) -> None:
    """B − A per group as a forest plot: the estimate and its 95% interval (a bar alone hides that most cross 0)."""
    import altair as alt

    rows = pd.DataFrame(
        {
            label: df[label].astype(str),
            "diff": 100 * df["diff"],
            "lo": [100 * c[0] for c in df["ci95"]],
            "hi": [100 * c[1] for c in df["ci95"]],
        }
    )
    y = alt.Y(f"{label}:N", title=None, sort=None)
    base = alt.Chart(rows)
    chart = (
        base.mark_rule().encode(y=y, x=alt.X("lo:Q", title="B − A, points (95% CI)"), x2="hi:Q")
        + base.mark_point(filled=True, size=60).encode(y=y, x="diff:Q")
        + alt.Chart(pd.DataFrame({"zero": [0]})).mark_rule(strokeDash=[4, 4]).encode(x="zero:Q")
    )
    st.altair_chart(chart, use_container_width=True)


def _compare_steps(data: Data, a: str, b: str) -> None:
    """Step metrics of both runs by a locator both have, their paired differences, and where each first errs."""
    locs = data.step_locators([a, b])
    if not locs:
        st.caption("No step verdicts shared by both runs: add them with `stepdpo-bench steps RUN --locator L`.")
        return
    st.subheader("Steps: where reasoning first goes wrong")
    names = [d for _, d in locs]
    display = st.selectbox("Step verdicts by", names, key="cmp_locator") if len(names) > 1 else names[0]
    res = data.compare_steps(a, b, display)
    from stepdpo_bench.step_metrics import LABELS

    def est(block: dict, pts: bool = True) -> str:
        if not block or block.get("value") is None:
            return "-"
        lo, hi = block["ci95"]
        f = (lambda x: f"{100 * x:.1f}") if pts else (lambda x: f"{x:.2f}")
        return f"{f(block['value'])} [{f(lo)}–{f(hi)}]" if lo is not None else f(block["value"])

    rows = []
    for d in res["diff"]:
        pts = d["metric"] != "first_error_step"
        f = (lambda x: f"{100 * x:+.1f}") if pts else (lambda x: f"{x:+.2f}")
        lo, hi = d.get("ci95") or [None, None]
        rows.append(
            {
                "metric": LABELS[d["metric"]] + (" %" if pts else ""),
                "A [95% CI]": est(res["a"].get(d["metric"]), pts),
                "B [95% CI]": est(res["b"].get(d["metric"]), pts),
                "B − A (paired)": "-" if d.get("diff") is None else f(d["diff"]),
                "95% CI": "-" if lo is None else f"{f(lo)} … {f(hi)}",
                "p": None if d.get("p") is None else round(d["p"], 3),
                "problems": d["problems"],
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
    import altair as alt

    hist = []
    for run, key in ((a, "a"), (b, "b")):
        for h in res[key].get("first_error_hist") or []:
            lo, hi = h["ci95"]
            hist.append(
                {
                    "run": f"{key.upper()}: {run[:40]}",
                    "first wrong step": h["step"],
                    "share": 100 * (h["value"] or 0),
                    "lo": None if lo is None else 100 * lo,
                    "hi": None if hi is None else 100 * hi,
                }
            )
    if hist:
        dfh = pd.DataFrame(hist)
        x = alt.X("first wrong step:N", sort=None)
        base = alt.Chart(dfh).encode(x=x, xOffset="run:N", color="run:N")
        st.altair_chart(
            base.mark_bar().encode(y=alt.Y("share:Q", title="% of solutions with a wrong step (95% CI)"))
            + base.mark_rule(color="black").encode(y="lo:Q", y2="hi:Q"),
            use_container_width=True,
        )
        st.caption(
            f"By {display}: where each run's solutions with a wrong step first go wrong; step accuracy counts "
            "checked steps only; 'right for wrong reasons' = correct answers with a wrong step."
        )


def _show_text(text: str, raw: bool) -> None:
    """Model text on the page: as plain text, or with its LaTeX rendered, but never as Markdown or HTML that could
    load a resource (an image, a tracking pixel) or change the page's structure (safe_markdown)."""
    if raw:
        st.text(text)
    else:
        st.markdown(safe_markdown(text), unsafe_allow_html=False)


def _answer_line(label: str, value: object) -> None:
    """``label: value`` with the value as literal text (a backtick in it cannot break out of anything)."""
    st.text(f"{label}: {value}")


def page_samples(data: Data) -> None:
    st.header("Samples, step by step")
    pair = _pick_pair(data)
    if pair is None:
        return
    a, b = pair
    sa = {s["problem_id"]: s for s in data.samples(a) if s["sample_idx"] == 0}
    sb = {s["problem_id"]: s for s in data.samples(b) if s["sample_idx"] == 0}
    common = sorted(sa.keys() & sb.keys())
    c1, c2, c3 = st.columns(3)
    which = c1.selectbox(
        "Show",
        ["where they disagree", "fixed by B", "broken by B", "both wrong", "both right", "all"],
        key="smp_filter",
    )
    subjects = sorted({str(sa[k]["subject"]) for k in common if sa[k]["subject"] is not None})
    subj = c2.selectbox("Subject", ["all", *subjects], key="smp_subject")
    levels = sorted({str(sa[k]["level"]) for k in common if sa[k]["level"] is not None})
    lev = c3.selectbox("Level", ["all", *levels], key="smp_level")

    def keep(k: str) -> bool:
        ca, cb = bool(sa[k]["correct"]), bool(sb[k]["correct"])
        ok = {
            "all": True,
            "where they disagree": ca != cb,
            "fixed by B": not ca and cb,
            "broken by B": ca and not cb,
            "both wrong": not (ca or cb),
            "both right": ca and cb,
        }[which]
        return ok and (subj == "all" or str(sa[k]["subject"]) == subj) and (lev == "all" or str(sa[k]["level"]) == lev)

    ids = [k for k in common if keep(k)]
    if not ids:
        st.info("No problem matches these filters.")
        return
    pid = st.selectbox(f"Problem ({len(ids)})", ids, key="smp_problem")
    raw = st.toggle("Show raw text (no LaTeX rendering)", key="smp_raw")
    rows = data.problem([a, b], pid)
    first = next(iter(rows.values()))
    st.subheader("Problem")
    _show_text(first.get("question") or first["prompt"], raw)
    with st.expander("The exact prompt the model saw"):
        st.text(first["prompt"])
    _answer_line("Gold answer", first["gold"])
    div = first_divergence(rows[a]["steps"], rows[b]["steps"]) if a in rows and b in rows else None
    if div is not None:
        st.warning(f"The solutions part ways at step {div + 1}.")
    locs = [d for _, d in data.step_locators([a]) + data.step_locators([b])]
    locs = list(dict.fromkeys(locs))
    loc = st.selectbox("Step verdicts by", locs, key="smp_locator") if len(locs) > 1 else (locs or [None])[0]
    cols = st.columns(2)
    for col, rid in zip(cols, (a, b), strict=True):
        r = rows.get(rid)
        with col:
            if r is None:
                st.write("(no sample)")
                continue
            st.markdown(f"#### {r['label']}")
            st.markdown(":green[**correct**]" if r["correct"] else ":red[**wrong**]")
            _answer_line("extracted", r["pred"])
            st.caption(
                f"answer found by: {r.get('method') or '?'} · grader: {r['reason']} · finish: "
                f"{r['finish_reason']} · {r['n_tokens']} tokens"
            )
            sv = data.step_verdict(rid, loc, pid) if loc else None
            if sv is not None:
                fw = sv["first_wrong"]
                st.caption(
                    f"steps by {loc}: "
                    + (f"first wrong step {fw + 1}" if fw is not None else "no wrong step found")
                    + f" · {sv['outcome']}"
                    + (f" · {sv['evidence'][:200]}" if sv.get("evidence") and loc != "judge" else "")
                )
            for i, step in enumerate(r["steps"]):
                with st.container(border=True):
                    marks = []
                    if sv is not None and sv["first_wrong"] == i:
                        marks.append(f":red[**first wrong step** ({loc})]")
                    if div is not None and i == div:
                        marks.append(":orange[**first divergent step**]")
                    if marks:
                        st.markdown(" · ".join(marks))
                    elif sv is not None and i < len(sv["verdicts"]):
                        st.caption(f"step {i + 1}: {sv['verdicts'][i]}")
                    _show_text(step, raw)
            if r.get("reasoning") is not None:  # a reasoning model's trace: after the answer, collapsed (it can
                # run to tens of thousands of characters); a trace the budget cut is why there is no answer
                n = r.get("reasoning_tokens")
                cut = " · cut by the budget: no answer" if r["finish_reason"] == "thinking" else ""
                with st.expander(f"Thinking trace ({n if n is not None else '?'} tokens{cut})", expanded=False):
                    st.text(r["reasoning"])


def page_audit(data: Data) -> None:
    st.header("Audit: where graders disagree")
    df = data.audit()
    if df.empty:
        st.success("No disagreements: no imported run carries a differing verdict, and no re-grade changed one.")
        return
    st.write(f"{len(df)} samples for a human to adjudicate.")
    st.dataframe(df, hide_index=True, use_container_width=True)
    st.download_button("Download CSV", _csv(df), "audit.csv", "text/csv")


def page_training(data: Data) -> None:
    st.header("Training curves")
    df = data.training()
    if df.empty:
        st.info("No training logs indexed (the trainer writes */train_log.jsonl under the results directory).")
        return
    for metric in ("loss", "reward_margin", "reward_accuracy"):
        st.subheader(metric.replace("_", " "))
        wide = df.pivot_table(index="step", columns="run_name", values=metric)
        st.line_chart(wide)


def _apply_link(data: Data) -> None:
    """Deep links (``?page=Samples&a=RUN&b=RUN&problem=ID``, as the CI gate's report writes them) preselect the
    page, the two runs and the problem, once per session; unknown values are ignored."""
    link = parse_link(dict(st.query_params))
    if st.session_state.get("_link_applied") or "page" not in link:
        return
    st.session_state["_link_applied"] = True
    if link["page"] in PAGES:
        st.session_state["page"] = link["page"]
    try:
        runs = set(data.runs().run_id)
    except StoreError:
        return
    if link.get("a") in runs and link.get("b") in runs:
        st.session_state["run_a"], st.session_state["run_b"] = link["a"], link["b"]
        st.session_state["quick"] = "(choose runs below)"
        if "problem" in link:
            st.session_state["smp_filter"] = "all"
            st.session_state["smp_problem"] = link["problem"]


def main() -> None:
    st.set_page_config(page_title="stepdpo-bench", layout="wide")
    db = _db_path()
    data = Data(db)
    _apply_link(data)
    page = st.sidebar.radio("Page", PAGES, key="page")
    st.sidebar.caption(f"index: {db}")
    try:
        {
            "Leaderboard": page_leaderboard,
            "Compare": page_compare,
            "Samples": page_samples,
            "Audit": page_audit,
            "Training": page_training,
        }[page](data)
    except StoreError as exc:
        st.error(str(exc))


main()
