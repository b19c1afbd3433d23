"""The documentation's "audit your own model, end to end" walkthrough (docs/own-model.md), executed as written.

The blocks are taken from docs/own-model.md (the fenced block after each
``<!-- walkthrough:NAME -->`` marker), so the page cannot drift from what
works: the training script is saved where step 1 says, and each shell command
runs in turn from the repository root with the test environment's
executables first on PATH.  Only ``WORK`` is moved into the test's temporary
directory.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "own-model.md"
README_WORK = "/tmp/my-first-audit"


def walkthrough_blocks() -> dict[str, str]:
    text = PAGE.read_text(encoding="utf-8")
    found = re.findall(r"<!-- walkthrough:(\S+) -->\s*```\w*\n(.*?)```", text, flags=re.S)
    return dict(found)


def shell_commands(block: str) -> list[str]:
    """The block's commands, backslash continuations joined."""
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


def test_the_page_has_the_walkthrough_blocks():
    blocks = walkthrough_blocks()
    assert set(blocks) == {"shell", "train_my_model.py"}
    commands = shell_commands(blocks["shell"])
    assert commands[0] == f"export WORK={README_WORK}"
    assert f"{README_WORK}/train_my_model.py" in PAGE.read_text(encoding="utf-8")
    assert any(c.startswith("python $WORK/train_my_model.py") for c in commands)


@pytest.mark.slow
def test_the_walkthrough_runs_end_to_end_as_the_page_says(tmp_path):
    blocks = walkthrough_blocks()
    work = tmp_path / "my-first-audit"
    work.mkdir()
    (work / "train_my_model.py").write_text(blocks["train_my_model.py"])
    env = dict(os.environ, WORK=str(work), SALIENCY_AUDIT_PROGRESS="0",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTEST_ADDOPTS", None)
    outputs = []
    for command in shell_commands(blocks["shell"])[1:]:  # the first sets WORK, which the test sets instead
        run = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=1500)
        outputs.append((command, run.returncode, run.stdout + run.stderr))
    (export, rc_export, out_export), (train, rc_train, out_train), first, second = outputs

    assert rc_export == 0, out_export
    assert rc_train == 0, out_train
    accuracies = [float(a) for a in re.findall(r"val accuracy ([\d.]+)", out_train)]
    assert len(accuracies) == 4 and accuracies[-1] >= 0.9, out_train  # "reaches a val accuracy above 0.9"

    # the first audit: exit 1 (some verdicts fail), IG passes utility, GradCAM fails it with the coarse warning
    _, rc, out = first
    assert rc == 1, out[-3000:]
    evidence = json.loads((work / "reports" / "evidence.json").read_text())
    verdicts = {(r["criterion"], r["method"]): r["verdict"] for r in evidence["results"]}
    assert len(verdicts) == 18 and "error" not in verdicts.values(), verdicts
    assert verdicts["utility", "ig"] == "pass" and verdicts["utility", "gradcam"] == "fail"
    for m in ("ig", "gradcam"):
        assert verdicts["randomization", m] == verdicts["completeness", m] == "pass"
    not_run = {k for k, v in verdicts.items() if v == "skipped"}
    assert not_run == {(c, m) for c in ("label_randomization", "repeatability", "reproducibility")
                       for m in ("ig", "gradcam")}
    assert "6 of 18 not evaluated" in out
    assert "warning: GradCAM layer layer4: GradCAM resolution 4x4 is coarse" in out
    acc = evidence["dataset"]["primary_accuracy"]
    assert acc["label_stratified"]["balanced_accuracy"] >= 0.85, acc
    assert "label-stratified check images" not in out  # no near-chance warning for the model as trained

    # the second audit, without --input-size: the near-chance warning on label-stratified images
    _, rc, out = second
    assert rc in (0, 1), out[-3000:]
    assert re.search(r"warning: the audited model's balanced accuracy on 48 label-stratified check images is "
                     r"0\.[45]\d", out), out[-3000:]
    assert "check --input-size and --normalize" in out
