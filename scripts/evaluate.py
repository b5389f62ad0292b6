"""Evaluate a trained model, compare it with the served one, and promote it if it is no worse.

    make evaluate                 the model of the current data (make train) against the
                                  promoted model; promote it if no language's macro F1 drops
                                  by more than MAX_REGRESSION (default 0.02) and every test
                                  story passes; FORCE_PROMOTE=1 promotes anyway
    make evaluate CROSS=1         also 5-fold cross-validation of each language's data
    make check-nlu-baseline       CI: fail if macro F1 on the fixed split is below
                                  tests/data/nlu/baseline.json

What it runs (Rasa's own tools): `rasa test nlu` on the fixed test split that is kept out
of training (tests/data/nlu/heldout_<language>.yml), for the candidate and the promoted model in
the same run, and `rasa test core` on the test stories (tests/data/stories).
What it writes, in results/evaluate/<time>/ (results/evaluate/latest points at the newest):
    summary.md, summary.json          the short report for product owners
    <language>/, promoted_<language>/ Rasa's intent_report.json, intent_errors.json,
                                      intent_confusion_matrix.png, intent_histogram.png
    stories/                          Rasa's story report and failed stories
Promotion copies the model to models/promoted/model.tar.gz (the previous one is kept as
models/promoted/previous.tar.gz) and asks the running Rasa server to load it (PUT /model
with the API token, RASA_URL / RASA_TOKEN or var/rasa-token), so the gateway keeps running.
Exit status: 0 promoted or not needed, 2 not promoted (a regression), 1 an error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from scripts.evaluate_nlu import LANGUAGES, cross_validated, held_out

ROOT = Path(__file__).resolve().parent.parent

RASA = str(Path(sys.executable).with_name("rasa"))  # beside the bot environment's python
# The served location and the reports; the environment moves them (tests use their own).
PROMOTED_DIR = Path(os.environ.get("PROMOTED_MODEL_DIR") or ROOT / "models" / "promoted")
RESULTS_DIR = Path(os.environ.get("EVALUATE_RESULTS_DIR") or ROOT / "results" / "evaluate")
BASELINE = ROOT / "tests" / "data" / "nlu" / "baseline.json"
INTENT_CHANGE = 0.02  # per-intent F1 change worth showing


def split_fingerprint() -> str:
    """Hash of the fixed test split: a stored evaluation is reused only on the same split."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "tests" / "data" / "nlu").glob("heldout_*.yml")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def per_intent_f1(report_dir: Path) -> Dict[str, float]:
    report = json.loads((report_dir / "intent_report.json").read_text())
    return {
        name: r["f1-score"]
        for name, r in report.items()
        if isinstance(r, dict) and "support" in r and name not in ("macro avg", "weighted avg", "micro avg")
    }


def confusions(report_dir: Path, top: int = 5) -> List[Dict[str, Any]]:
    """The most frequent (true intent -> predicted intent) mistakes, with one example each."""
    path = report_dir / "intent_errors.json"
    errors = json.loads(path.read_text()) if path.exists() else []
    pairs = Counter((e["intent"], (e.get("intent_prediction") or {}).get("name")) for e in errors)
    example = {}
    for e in errors:
        example.setdefault((e["intent"], (e.get("intent_prediction") or {}).get("name")), e["text"])
    return [
        {"intent": a, "predicted": b, "count": n, "example": example[(a, b)]} for (a, b), n in pairs.most_common(top)
    ]


def run_stories(model: str, out: Path) -> Dict[str, Any]:
    """Rasa's test stories: how many stories failed (0 is the only good answer)."""
    out.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            RASA,
            "test",
            "core",
            "--model",
            model,
            "--stories",
            str(ROOT / "tests" / "data" / "stories"),
            "--out",
            str(out),
            "--no-plot",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    (out / "rasa.log").write_text(result.stdout)
    failed_file = out / "failed_test_stories.yml"
    failed = failed_file.read_text().count("- story:") if failed_file.exists() else 0
    report = out / "story_report.json"
    total = None
    if report.exists():
        data = json.loads(report.read_text())
        total = (data.get("conversation_accuracy") or {}).get("total")
    return {"failed": failed, "total": total, "ok": result.returncode == 0 and failed == 0}


def evaluate_model(model: str, out: Path, prefix: str = "") -> Dict[str, Any]:
    """Reports in <out>/<prefix><language>/: the candidate's in ja/ and en/."""
    figures = held_out(model, out_root=out, prefix=prefix)
    result: Dict[str, Any] = {"model": model, "languages": {}}
    for language in LANGUAGES:
        report_dir = out / f"{prefix}{language}"
        result["languages"][language] = {
            "accuracy": figures[language]["accuracy"],
            "macro_f1": figures[language]["macro_f1"],
            "intents": per_intent_f1(report_dir),
            "confusions": confusions(report_dir),
        }
    return result


def decide(
    candidate: Dict[str, Any],
    previous: Optional[Dict[str, Any]],
    max_regression: float,
    stories: Optional[Dict[str, Any]],
    force: bool,
) -> Tuple[bool, List[str]]:
    """(promote?, reasons in plain words)."""
    reasons: List[str] = []
    if previous is None:
        reasons.append("no model was promoted before")
    else:
        for language in LANGUAGES:
            now = candidate["languages"][language]["macro_f1"]
            before = previous["languages"][language]["macro_f1"]
            if before - now > max_regression:
                reasons.append(
                    f"{language} macro F1 fell from {before:.3f} to {now:.3f} "
                    f"(more than the allowed {max_regression:.3f})"
                )
    if stories is not None and not stories["ok"]:
        reasons.append(f"{stories['failed']} test stor{'y' if stories['failed'] == 1 else 'ies'} failed")
    regressed = [r for r in reasons if r != "no model was promoted before"]
    if force and regressed:
        return True, ["forced (FORCE_PROMOTE=1) despite: " + "; ".join(regressed)]
    if regressed:
        return False, regressed
    return True, reasons or ["no regression"]


def summary_markdown(
    candidate: Dict[str, Any],
    previous: Optional[Dict[str, Any]],
    stories: Optional[Dict[str, Any]],
    promoted: bool,
    reasons: List[str],
    when: datetime,
    cv: Optional[Dict[str, Any]],
) -> str:
    lines = [f"# Evaluation {when:%Y-%m-%d %H:%M} UTC", ""]
    lines.append(f"- Candidate: `{Path(candidate['model']).name}`")
    if previous:
        lines.append(f"- Compared with the promoted model: `{previous.get('source') or Path(previous['model']).name}`")
    lines.append(f"- Decision: **{'PROMOTED' if promoted else 'NOT PROMOTED'}** ({'; '.join(reasons)})")
    lines += [
        "",
        "## Intent classification on the fixed test split (tests/data/nlu)",
        "",
        "| language | accuracy | macro F1 | previous macro F1 | change |",
        "|---|---|---|---|---|",
    ]
    for language in LANGUAGES:
        now = candidate["languages"][language]
        before = previous["languages"][language] if previous else None
        change = f"{now['macro_f1'] - before['macro_f1']:+.3f}" if before else "–"
        lines.append(
            f"| {language} | {now['accuracy']:.3f} | {now['macro_f1']:.3f} | {before['macro_f1']:.3f} | {change} |"
            if before
            else f"| {language} | {now['accuracy']:.3f} | {now['macro_f1']:.3f} | – | – |"
        )
    if previous:
        lines += ["", f"## Intents that got better or worse (F1 change of {INTENT_CHANGE} or more)", ""]
        changed = []
        for language in LANGUAGES:
            now, before = candidate["languages"][language]["intents"], previous["languages"][language]["intents"]
            for intent in sorted(set(now) | set(before)):
                delta = now.get(intent, 0.0) - before.get(intent, 0.0)
                if abs(delta) >= INTENT_CHANGE:
                    changed.append((language, intent, before.get(intent, 0.0), now.get(intent, 0.0), delta))
        if changed:
            lines += ["| language | intent | before | now | change |", "|---|---|---|---|---|"]
            for language, intent, before, now, delta in sorted(changed, key=lambda c: c[4]):
                lines.append(f"| {language} | {intent} | {before:.2f} | {now:.2f} | {delta:+.2f} |")
        else:
            lines.append("None.")
    lines += [
        "",
        "## Worst confusions (true intent → predicted)",
        "",
        "| language | intent | predicted as | times | example |",
        "|---|---|---|---|---|",
    ]
    for language in LANGUAGES:
        for c in candidate["languages"][language]["confusions"]:
            example = c["example"].replace("|", "\\|")
            lines.append(f"| {language} | {c['intent']} | {c['predicted']} | {c['count']} | {example} |")
    if stories is not None:
        lines += ["", "## Test stories (tests/data/stories)", ""]
        lines.append(
            "All passed." if stories["ok"] else f"{stories['failed']} failed: see stories/failed_test_stories.yml."
        )
    if cv:
        lines += [
            "",
            "## Cross-validation (each language's training data)",
            "",
            "| language | accuracy | macro F1 |",
            "|---|---|---|",
        ]
        for language, figures in cv.items():
            lines.append(f"| {language} | {figures['accuracy']:.3f} | {figures['macro_f1']:.3f} |")
    lines += ["", "## Rasa's reports", ""]
    for language in LANGUAGES:
        lines.append(
            f"- {language}: `{language}/intent_report.json`, "
            f"`{language}/intent_confusion_matrix.png`, `{language}/intent_histogram.png`"
        )
    return "\n".join(lines) + "\n"


def promote(model: str, evaluation: Dict[str, Any], forced: bool) -> Path:
    """Copy the model to the served location (atomically) and record what it is."""
    PROMOTED_DIR.mkdir(parents=True, exist_ok=True)
    target = PROMOTED_DIR / "model.tar.gz"
    if target.exists():
        shutil.copy2(target, PROMOTED_DIR / "previous.tar.gz")
    tmp = PROMOTED_DIR / ".model.tar.gz.tmp"
    shutil.copy2(model, tmp)
    tmp.replace(target)
    # The evaluation is kept with the model, so the next `make evaluate` compares against it
    # without testing the promoted model again (when the test split is unchanged).
    record = {
        "source": Path(model).name,
        "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "forced": forced,
        "split": split_fingerprint(),
        "evaluation": evaluation,
    }
    (PROMOTED_DIR / "promoted.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
    return target


def rasa_token() -> Optional[str]:
    if os.environ.get("RASA_TOKEN"):
        return os.environ["RASA_TOKEN"]
    path = ROOT / "var" / "rasa-token"
    return path.read_text().strip() if path.exists() else None


def load_into_server(model_path: Path, rasa_url: str, token: Optional[str]) -> str:
    """Ask the running Rasa server to serve `model_path` now (Rasa's PUT /model). Only a
    local file is ever sent, never a model server address (CVE-2024-49375)."""
    if not token:
        return "no Rasa API token (RASA_TOKEN or var/rasa-token): the next `make run` serves it"
    request = urllib.request.Request(
        f"{rasa_url.rstrip('/')}/model?token={token}",
        method="PUT",
        data=json.dumps({"model_file": str(model_path.resolve())}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            if response.status not in (200, 204):
                return f"Rasa answered {response.status}; the next `make run` serves it"
    except urllib.error.HTTPError as error:
        return f"Rasa refused to load it ({error.code}); it is still served by the next `make run`"
    except (urllib.error.URLError, OSError):
        return f"no Rasa server at {rasa_url}: the next `make run` serves it"
    return f"the Rasa server at {rasa_url} now serves it (the gateway was not restarted)"


def check_baseline(model: str, out: Path, baseline_path: Path) -> int:
    baseline = json.loads(baseline_path.read_text())
    result = evaluate_model(model, out)
    failures = []
    for language in LANGUAGES:
        now = result["languages"][language]["macro_f1"]
        floor = baseline[language]["macro_f1"] - baseline.get("tolerance", 0.0)
        print(
            f"check-nlu-baseline: {language} macro F1 {now:.3f} (baseline {baseline[language]['macro_f1']:.3f}, "
            f"floor {floor:.3f})"
        )
        if now < floor:
            failures.append(language)
    if failures:
        print(
            f"check-nlu-baseline: FAILED for {', '.join(failures)}: the model got worse on the fixed test split. "
            "Look at results/evaluate/ for the confusions; raise tests/data/nlu/baseline.json only for a better model."
        )
        return 1
    return 0


def latest_model() -> str:
    out = (
        subprocess.run([str(ROOT / "scripts" / "train.sh")], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    return str(ROOT / out)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="the candidate (default: the model of the current data)")
    parser.add_argument("--max-regression", type=float, default=float(os.environ.get("MAX_REGRESSION", 0.02)))
    parser.add_argument("--force", action="store_true", default=os.environ.get("FORCE_PROMOTE") == "1")
    parser.add_argument("--no-stories", action="store_true", help="skip the test stories (an NLU-only model)")
    parser.add_argument("--cross-validation", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--check-baseline", action="store_true", help="only compare with tests/data/nlu/baseline.json")
    parser.add_argument("--rasa-url", default=os.environ.get("RASA_URL", "http://127.0.0.1:5005"))
    args = parser.parse_args(argv)

    model = str(Path(args.model).resolve()) if args.model else latest_model()
    when = datetime.now(timezone.utc)
    out = RESULTS_DIR / when.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    _point_latest(out)
    if args.check_baseline:
        return check_baseline(model, out, BASELINE)

    print(f"evaluate: testing {Path(model).name} on the fixed test split (tests/data/nlu)...")
    candidate = evaluate_model(model, out)
    previous = None
    served = PROMOTED_DIR / "model.tar.gz"
    if served.exists():
        path = PROMOTED_DIR / "promoted.json"
        record = json.loads(path.read_text()) if path.exists() else {}
        if record.get("split") == split_fingerprint() and record.get("evaluation"):
            previous = record["evaluation"]
        else:
            print("evaluate: testing the promoted model on the same split...")
            previous = evaluate_model(str(served), out, "promoted_")
        previous["source"] = record.get("source")
    stories = None if args.no_stories else run_stories(model, out / "stories")
    cv = cross_validated(args.folds) if args.cross_validation else None
    promoted, reasons = decide(candidate, previous, args.max_regression, stories, args.force)
    same_model = previous is not None and previous.get("source") == Path(model).name
    (out / "summary.md").write_text(summary_markdown(candidate, previous, stories, promoted, reasons, when, cv))
    (out / "summary.json").write_text(
        json.dumps(
            {
                "when": when.isoformat(),
                "candidate": candidate,
                "previous": previous,
                "stories": stories,
                "promoted": promoted,
                "reasons": reasons,
                "cross_validation": cv,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    for language in LANGUAGES:
        figures = candidate["languages"][language]
        print(f"evaluate: {language}: accuracy {figures['accuracy']:.3f}, macro F1 {figures['macro_f1']:.3f}")
    print(f"evaluate: summary in {out / 'summary.md'} (also results/evaluate/latest/)")
    if not promoted:
        print(
            "evaluate: NOT PROMOTED: " + "; ".join(reasons) + ". The served model is unchanged; "
            "make evaluate FORCE_PROMOTE=1 promotes it anyway."
        )
        return 2
    if same_model:
        print("evaluate: this model is already the promoted one.")
        return 0
    target = promote(model, candidate, forced=args.force)
    print(
        f"evaluate: PROMOTED ({'; '.join(reasons)}) to {target}; "
        + load_into_server(target, args.rasa_url, rasa_token())
    )
    return 0


def _point_latest(out: Path) -> None:
    latest = RESULTS_DIR / "latest"
    tmp = RESULTS_DIR / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(out.name)
    tmp.replace(latest)


if __name__ == "__main__":
    sys.exit(main())
