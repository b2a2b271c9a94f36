"""A real browser against the running app: Debian's Chromium driven by Playwright, on loopback.

Marked ``browser``.  Skips when Playwright or Chromium is missing, unless STEPDPO_REQUIRE_BROWSER=1 (CI).
Screenshots of each page land in the test's tmp directory (and STEPDPO_SCREENSHOTS when set).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..servers import free_port, stop, wait_for_http

pytestmark = pytest.mark.browser
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).exists()), None)
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _need(what: str) -> None:
    if os.environ.get("STEPDPO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{what} is required here (STEPDPO_REQUIRE_BROWSER=1)")
    pytest.skip(f"{what} not installed")


@pytest.fixture(scope="module")
def app_url(app_results, tmp_path_factory):
    try:
        import playwright  # noqa: F401
    except ImportError:
        _need("playwright")
    if CHROMIUM is None:
        _need("Debian chromium")
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    cmd = [
        sys.executable,
        "-m",
        "stepdpo_bench.cli",
        "app",
        "--results",
        str(app_results),
        "--port",
        str(port),
        "--no-ingest",
    ]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/_stcore/health", proc, log, 120)
        yield url
    finally:
        stop(proc)


def _settle(page) -> None:
    """Wait for Streamlit's rerun to finish (its status widget disappears), so no stale element is read."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=30_000)
    page.wait_for_timeout(200)


def _select(page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.get_by_role("option", name=option).first.click()
    _settle(page)


def test_browse_every_page(app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Same tier = not significantly worse than the tier").first).to_be_visible()
        _settle(page)
        expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()
        expect(page.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shots / "1-leaderboard.png"), full_page=True)

        page.get_by_text("Compare", exact=True).first.click()
        _settle(page)
        expect(page.get_by_role("heading", name="Compare two runs")).to_be_visible(timeout=30_000)
        _select(page, "Quick comparison", "DPO vs Step-DPO on tiny-base · arith")
        expect(page.get_by_text("10 fixed by B, 5 broken by B").first).to_be_visible(timeout=30_000)
        expect(page.get_by_text("By Subject").first).to_be_visible()
        expect(page.get_by_text("Steps: where reasoning first goes wrong").first).to_be_visible(timeout=30_000)
        expect(page.locator('[data-testid="stVegaLiteChart"]').nth(2)).to_be_visible(timeout=30_000)  # forest, hist
        page.screenshot(path=str(shots / "2-compare.png"), full_page=True)

        page.get_by_text("Samples", exact=True).first.click()
        _settle(page)
        expect(page.get_by_role("heading", name="Samples, step by step")).to_be_visible(timeout=30_000)
        _select(page, "Quick comparison", "DPO vs Step-DPO on tiny-base · arith")
        _select(page, "Show", "fixed by B")
        expect(page.get_by_text("Problem (10)").first).to_be_visible(timeout=30_000)
        expect(page.get_by_text("part ways at step 1").first).to_be_visible(timeout=30_000)
        # a problem fixed by B: A (left column) wrong, B (right column) correct
        cols = page.locator('[data-testid="stColumn"]').filter(has_text="extracted")
        expect(cols.nth(0)).to_contain_text("wrong")
        expect(cols.nth(1)).to_contain_text("correct")
        expect(page.get_by_text("first divergent step").first).to_be_visible()
        expect(cols.nth(1)).to_contain_text("first wrong step (exact)")  # right for the wrong reasons, marked
        _settle(page)
        page.screenshot(path=str(shots / "3-samples.png"), full_page=True)

        page.get_by_text("Audit", exact=True).first.click()
        _settle(page)
        expect(page.get_by_text("15 samples for a human to adjudicate").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shots / "4-audit.png"), full_page=True)

        page.get_by_text("Training", exact=True).first.click()
        _settle(page)
        expect(page.get_by_role("heading", name="Training curves")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shots / "5-training.png"), full_page=True)
        browser.close()
    assert len(list(shots.glob("*.png"))) == 5
    if os.environ.get("STEPDPO_SCREENSHOTS"):
        shutil.copytree(shots, os.environ["STEPDPO_SCREENSHOTS"], dirs_exist_ok=True)


HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src="http://127.0.0.1:9/onerror.png" onerror="window.__pwned = 2">',
    "![tracking pixel](http://127.0.0.1:9/pixel.png)",
    "see [the answer](http://127.0.0.1:9/link) or http://127.0.0.1:9/autolink and www.example.com",
    "``a `code` span`` then `unclosed",
    r"so $\href{http://127.0.0.1:9/tex}{x} + \url{http://127.0.0.1:9/url}$ and $\includegraphics{http://127.0.0.1:9/g.png}$",
]


@pytest.fixture(scope="module")
def hostile_results(app_results, tmp_path_factory):
    """The app's fixture runs with hostile model text planted in one problem of each run, re-indexed."""
    from stepdpo_bench.runs import RunDir
    from stepdpo_bench.store import ingest

    out = tmp_path_factory.mktemp("hostile") / "results"
    shutil.copytree(app_results, out, ignore=shutil.ignore_patterns("*.duckdb*"))
    for d in out.iterdir():
        if (d / "samples.parquet").is_file():
            run = RunDir(d)
            rows = run.read_samples()
            for r in rows:
                if r["problem_id"].endswith("/0"):
                    r["completion"] = "\n\n".join(HOSTILE)
                    r["steps"] = list(HOSTILE)
                    r["pred"] = "`x` ![p](http://127.0.0.1:9/pred.png)"
            run.compact(rows)
    ingest(out)
    return out


def test_hostile_model_text_loads_nothing_and_injects_nothing(hostile_results, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    if CHROMIUM is None:
        _need("Debian chromium")
    port = free_port()
    log = tmp_path / "app.log"
    cmd = [
        sys.executable,
        "-m",
        "stepdpo_bench.cli",
        "app",
        "--results",
        str(hostile_results),
        "--port",
        str(port),
        "--no-ingest",
    ]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/_stcore/health", proc, log, 120)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
            page.goto(f"{url}/?page=Samples")
            expect(page.get_by_role("heading", name="Samples, step by step")).to_be_visible(timeout=60_000)
            _settle(page)
            _select(page, "Quick comparison", "DPO vs Step-DPO on tiny-base · arith")
            _select(page, "Show", "all")
            _select(page, "Problem", "arith/test/0")
            expect(page.get_by_text("window.__pwned = 1").first).to_be_visible(timeout=30_000)  # shown as text
            page.wait_for_timeout(1500)
            assert page.evaluate("window.__pwned === undefined")
            main = page.locator('[data-testid="stMain"], section.main').first
            assert main.locator("img").count() == 0
            links = main.locator('a[href*="127.0.0.1:9"], a[href*="example.com"]')
            where = "els => els.map(e => e.parentElement.outerHTML.slice(0, 400))"
            assert links.count() == 0, links.evaluate_all(where)
            assert main.locator("script").count() == 0
            page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
            browser.close()
        assert outside == [], f"the page made requests outside the app: {outside}"
    finally:
        stop(proc)


def test_new_runs_appear_while_the_app_is_open(app_results, tmp_path):
    """The app open in a browser, three ingests in other processes: each new run shows on the next view of the
    page, with no restart, and no ingest waits for the app."""
    from playwright.sync_api import expect, sync_playwright

    from ..helpers import clone_run

    if CHROMIUM is None:
        _need("Debian chromium")
    results = tmp_path / "results"
    shutil.copytree(app_results, results, ignore=shutil.ignore_patterns("*.duckdb*"))
    subprocess.run([sys.executable, "-m", "stepdpo_bench.cli", "ingest", str(results)], check=True, timeout=300)
    src = next(d for d in sorted(results.iterdir()) if (d / "samples.parquet").is_file())
    port = free_port()
    log = tmp_path / "app.log"
    cmd = [sys.executable, "-m", "stepdpo_bench.cli", "app", "--results", str(results), "--port", str(port)]
    with log.open("w") as fh:
        proc = subprocess.Popen([*cmd, "--no-ingest"], stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/_stcore/health", proc, log, 120)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible(timeout=60_000)
            _settle(page)
            expect(page.get_by_text("late-model-0")).to_have_count(0)
            for i in range(3):
                clone_run(src, results, f"late-model-{i}")
                res = subprocess.run(
                    [sys.executable, "-m", "stepdpo_bench.cli", "ingest", str(results)],
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert res.returncode == 0 and "1 added" in res.stdout, res.stdout + res.stderr
                page.reload()
                expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible(timeout=60_000)
                _settle(page)
                page.get_by_label("Search model").fill("late-model")
                page.keyboard.press("Enter")
                _settle(page)
                grid = page.locator('[data-testid="stDataFrame"]').first
                expect(grid).to_be_visible(timeout=30_000)
                for j in range(i + 1):  # the grid's accessible cells (and the chart's axis) carry the labels
                    expect(page.get_by_text(f"late-model-{j}").first).to_be_attached(timeout=30_000)
                expect(page.get_by_text(f"late-model-{i + 1}")).to_have_count(0)
            browser.close()
    finally:
        stop(proc)


def test_a_long_thinking_trace_opens_collapsed_after_the_answer(thinking_results, tmp_path):
    """A sample with a 35,000-character trace cut by the budget: chosen on the Samples page, it shows the verdict
    and the trace's header, the trace itself collapsed until asked for; prints how long opening it took."""
    import time

    from playwright.sync_api import expect, sync_playwright

    from stepdpo_bench.runs import RunDir

    if CHROMIUM is None:
        _need("Debian chromium")
    runs = {RunDir(d).manifest().model.method: d.name for d in thinking_results.iterdir() if d.is_dir()}
    port = free_port()
    log = tmp_path / "app.log"
    cmd = [sys.executable, "-m", "stepdpo_bench.cli", "app", "--results", str(thinking_results), "--port", str(port)]
    with log.open("w") as fh:
        proc = subprocess.Popen([*cmd, "--no-ingest"], stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/_stcore/health", proc, log, 120)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # the Samples page open on another problem, then the long sample chosen: the time to open one sample
            page.goto(f"{url}/?page=Samples&a={runs['dpo']}&b={runs['step-dpo']}&problem=arith/test/1")
            expect(page.get_by_text("Thinking trace (").first).to_be_visible(timeout=60_000)
            _settle(page)
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Problem").first.click()
            t0 = time.perf_counter()  # from choosing the problem to its trace's header on screen
            page.get_by_role("option", name="arith/test/0").first.click()
            head = page.get_by_text("Thinking trace (31000 tokens · cut by the budget: no answer)")
            expect(head.first).to_be_visible(timeout=60_000)
            print(
                f"opening a sample with a 35,000-character trace: {time.perf_counter() - t0:.2f} s to its trace header"
            )
            _settle(page)
            cols = page.locator('[data-testid="stColumn"]').filter(has_text="extracted")
            expect(cols.nth(0)).to_contain_text("wrong")
            expect(cols.nth(0)).to_contain_text("finish: thinking")
            trace = page.get_by_text("LONG-TRACE-START", exact=False)
            expect(trace).to_have_count(0) if trace.count() == 0 else expect(trace.first).to_be_hidden()
            head.first.click()
            expect(trace.first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Thinking trace (").nth(1)).to_be_visible()  # B's trace, its own header
            page.screenshot(path=str(tmp_path / "thinking.png"), full_page=True)
            browser.close()
    finally:
        stop(proc)
