"""The radiologist benchmark (issue 30, item 3): ``--human-annotations`` and the ``human_benchmark`` criterion.

Metric functions on hand-made masks with known answers, the paired ratio bound, the annotation loader
(mask folders, missing annotations recorded, bad files named), and the criterion end to end on a tiny
TorchScript model and a 64-px folder dataset: the oracle map passes against readers who drew the truth
shifted by two pixels, a random map fails, and without the option the criterion is absent (not planned,
its test skipped, no evidence, no report section).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from saliency_audit import Audit, AuditConfig
from saliency_audit.common.errors import AuditInputError, AuditUsageError
from saliency_audit.data.human import HumanAnnotations, detect_format, load_human_annotations
from saliency_audit.metrics.human import (iou, map_scores, otsu_segmentation, points_hit, reader_scores,
                                          representative_points)
from saliency_audit.stats.ratio import ratio_bound

pytest_plugins = ["pytester"]
SIZE, N_IMAGES, MISSING = 64, 12, ("img03", "img07")


def _square(shape, y0, x0, side) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y0 + side, x0:x0 + side] = True
    return m


def _png(path, arr) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8)).save(path)


# -- metrics ------------------------------------------------------------------------------------------------
def test_otsu_segmentation_fills_holes_and_a_tuned_threshold_is_map_above_it():
    m = np.full((16, 16), 0.1)
    m[4:10, 4:10] = 0.9
    m[6:8, 6:8] = 0.1  # a hole inside the salient region: CheXlocalize fills each contour
    seg = otsu_segmentation(m)
    assert np.array_equal(seg, _square((16, 16), 4, 4, 6))
    ramp = np.tile(np.linspace(0, 1, 11), (3, 1))
    assert otsu_segmentation(ramp, threshold=0.65).sum(axis=1).tolist() == [4, 4, 4]  # 0.7, 0.8, 0.9, 1.0
    assert not otsu_segmentation(np.full((8, 8), 0.3)).any()  # a constant map marks nothing


def test_iou_and_the_pointing_game_on_known_masks():
    t = _square((12, 12), 0, 0, 4)
    s = _square((12, 12), 0, 2, 4)  # half of it overlaps: 8 / (16 + 16 - 8)
    assert iou(s, t) == pytest.approx(8 / 24)
    assert iou(np.zeros((12, 12)), t) == 0.0 and np.isnan(iou(s, np.zeros((12, 12), bool)))
    m = np.zeros((12, 12))
    m[1, 1] = 1.0
    assert map_scores(m, t)["hit"] == 1.0
    m[1, 1], m[9, 9] = 0.0, 1.0
    assert map_scores(m, t)["hit"] == 0.0
    m[1, 1] = 1.0  # a plateau of two maxima, one inside: the expected hit
    assert map_scores(m, t)["hit"] == 0.5


def test_a_readers_point_is_inside_what_the_reader_drew_and_marking_nothing_misses():
    crescent = _square((20, 20), 2, 2, 14) & ~_square((20, 20), 2, 6, 14)  # an L: its centroid lies outside it
    (x, y), = representative_points(crescent)
    assert crescent[y, x]
    two = _square((20, 20), 0, 0, 5) | _square((20, 20), 12, 12, 5)
    assert sorted(representative_points(two)) == [(2, 2), (14, 14)]
    truth = _square((20, 20), 12, 12, 5)
    assert points_hit(representative_points(two), truth) == 1.0  # any point inside hits (CheXlocalize)
    assert points_hit([], truth) == 0.0 and representative_points(np.zeros((4, 4))) == []
    nothing = reader_scores(np.zeros((20, 20), bool), truth)
    assert nothing["hit"] == 0.0 and nothing["iou"] == 0.0 and nothing["ap"] == pytest.approx(25 / 400)


def test_a_readers_ap_is_that_of_a_binary_score():
    truth = _square((10, 10), 0, 0, 5)  # 25 of 100 pixels
    reader = _square((10, 10), 0, 0, 4) | _square((10, 10), 8, 8, 2)  # 16 inside, 4 outside
    recall, precision, prevalence = 16 / 25, 16 / 20, 25 / 100
    got = reader_scores(reader, truth)
    assert got["ap"] == pytest.approx(recall * precision + (1 - recall) * prevalence)
    assert got["iou"] == pytest.approx(16 / 29)


def test_the_paired_ratio_bound_matches_a_direct_paired_bootstrap():
    rng = np.random.default_rng(1)
    y = (rng.random(60) < 0.85).astype(float)
    x = np.where(rng.random(60) < 0.8, y, 1 - y)  # the method agrees with the readers on most images
    b = ratio_bound(x, y, alpha=0.05, resamples=2000, seed=3)
    assert b.mean == pytest.approx(x.mean() / y.mean()) and b.lo < b.mean < b.hi
    idx = rng.integers(0, 60, (4000, 60))  # images resampled with both readings
    direct = np.quantile(x[idx].mean(1) / y[idx].mean(1), 0.05)
    assert abs(b.lo - direct) < 0.05, (b.lo, direct)
    same = ratio_bound(y, y)
    assert same.mean == same.lo == 1.0
    assert np.isnan(ratio_bound(x, np.zeros(60)).mean)


# -- the loader ---------------------------------------------------------------------------------------------
def test_loader_reads_a_finding_subfolder_resizes_to_the_grid_and_records_missing(tmp_path):
    _png(tmp_path / "hb" / "Nodule" / "a.png", _square((32, 32), 4, 4, 8) * 255)
    _png(tmp_path / "hb" / "Nodule" / "b.png", np.zeros((32, 32)))
    _png(tmp_path / "hb" / "Effusion" / "c.png", np.full((32, 32), 255))
    got = load_human_annotations(tmp_path / "hb", "Nodule", ["a", "b", "c"], (16, 16),
                                 native={"a": (32, 32), "b": (32, 32), "c": (32, 32)})
    assert isinstance(got, HumanAnnotations) and got.format == "mask-folder"
    assert np.array_equal(got.get("a").mask, _square((16, 16), 2, 2, 4))
    assert not got.get("b").mask.any()  # read, nothing marked: kept (a miss), not missing
    assert got.get("c") is None and got.missing == ["c"]
    assert got.describe()["n_annotated"] == 2 and got.describe()["missing"] == ["c"]


def test_loader_errors_are_one_line_and_name_the_path(tmp_path):
    with pytest.raises(AuditUsageError, match=r"^--human-annotations=.*nowhere: no such file or directory$"):
        detect_format(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(AuditUsageError, match=r"notes\.txt: not an annotation format .*mask-folder"):
        load_human_annotations(tmp_path / "notes.txt", None, ["a"], (8, 8))
    bad = tmp_path / "hb"
    _png(bad / "a.png", np.zeros((8, 8)))
    (bad / "b.png").write_bytes(b"not a png")
    with pytest.raises(AuditInputError, match=r"b\.png: cannot read image") as exc:
        load_human_annotations(bad, None, ["a", "b"], (8, 8))
    assert "\n" not in str(exc.value)
    with pytest.raises(AuditInputError, match=r"a\.png: mask of 8x8 pixels, but image 'a' is 32x32"):
        load_human_annotations(bad, None, ["a"], (16, 16), native={"a": (32, 32)})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AuditUsageError, match="no mask images"):
        load_human_annotations(empty, None, ["a"], (8, 8))


# -- the criterion, end to end --------------------------------------------------------------------------------
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.c(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 64-px folder dataset (one square lesion per image), a tiny TorchScript model, and readers who drew
    each lesion shifted by two pixels, leaving two audited images unread."""
    root = tmp_path_factory.mktemp("human")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        y0, x0 = (int(v) for v in rng.integers(6, SIZE - 20, 2))
        truth = _square((SIZE, SIZE), y0, x0, 12)
        _png(root / "data" / "images" / f"img{i:02d}.png", rng.random((SIZE, SIZE)) * 120 + truth * 100)
        _png(root / "data" / "masks" / f"img{i:02d}.png", truth * 255)
        if f"img{i:02d}" not in MISSING:
            _png(root / "readers" / f"img{i:02d}.png", _square((SIZE, SIZE), y0 + 2, x0 + 2, 12) * 255)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(Tiny().eval(), torch.rand(1, 1, SIZE, SIZE)).save(str(root / "tiny.ts"))
    return root


def _audit(world, tmp_path, **kw) -> Audit:
    cfg = AuditConfig(n_images=N_IMAGES, sequential=False, cache_dir=str(tmp_path / "cache"))
    cfg.model.input_size = (SIZE, SIZE)
    cfg.stats.resamples = 1000
    return Audit(model=str(world / "tiny.ts"), dataset="folder", data_root=str(world / "data"),
                 methods=["oracle", "random", "grad"], config=cfg, **kw)


def test_oracle_passes_random_fails_and_the_report_shows_both_beside_the_readers(world, tmp_path):
    audit = _audit(world, tmp_path, human_annotations=world / "readers", report_dir=tmp_path / "report")
    assert audit.absent("human_benchmark") is None
    plan = audit.make_plan([("human_benchmark", m) for m in audit.methods])
    assert plan["criteria"] == ["human_benchmark"] and plan["per_pair"]["human_benchmark[grad]"] == N_IMAGES - 2

    oracle = audit.human_benchmark("oracle")
    assert oracle.verdict == "pass", oracle.explanation
    hit = oracle.details["metrics"]["hit_rate"]
    assert hit["method"] == 1.0 and hit["human"] == 1.0 and oracle.bound >= 0.9 and oracle.n == N_IMAGES - 2
    assert oracle.explanation.startswith("Softened lesion mask (positive control) localises the lesion at 100 % of "
                                         "the radiologists' hit rate (lower bound 100 %)")
    iou_ = oracle.details["metrics"]["iou"]
    assert iou_["human"] == pytest.approx(100 / 188)  # 12-px squares shifted by 2 px in y and x: 100 / 188
    assert sorted(oracle.details["annotations"]["missing"]) == list(MISSING)  # recorded, never silently dropped
    assert "2 audited image(s) without a reader's annotation left out" in oracle.explanation
    assert {p["id"] for p in oracle.per_image}.isdisjoint(MISSING)

    random = audit.human_benchmark("random")
    assert random.verdict == "fail" and random.bound < 0.5, random.explanation
    assert "below the non-inferiority margin 90 %" in random.explanation
    grad = audit.human_benchmark("grad")  # a real method through the model: a verdict, not an error
    assert grad.verdict in ("pass", "fail"), grad.explanation

    evidence = json.loads(audit.write_evidence().read_text())
    got = {r["method"]: r for r in evidence["results"] if r["criterion"] == "human_benchmark"}
    assert set(got) == {"oracle", "random", "grad"} and evidence["config"]["human"]["margin"] == 0.9
    assert got["oracle"]["p_value"] is not None and got["random"]["p_value"] > 0.05
    from saliency_audit.report.html import render

    page = render(evidence)
    assert 'id="human_benchmark"' in page and "Radiologist benchmark" in page and "non-inferiority" in page
    assert "<code>img03</code>" in page and page.count("<th>readers</th>") == 3


def test_without_the_option_the_criterion_is_absent(world, tmp_path):
    audit = _audit(world, tmp_path)
    assert audit.absent("human_benchmark") == "human_benchmark runs only with --human-annotations"
    plan = audit.make_plan([("human_benchmark", "oracle"), ("pointing", "oracle")])
    assert plan["criteria"] == ["pointing"]
    r = audit.human_benchmark("oracle")  # asked for anyway: said, never recorded
    assert r.verdict == "skipped" and r.explanation == "human_benchmark runs only with --human-annotations"
    evidence = audit.evidence()
    assert not any(r["criterion"] == "human_benchmark" for r in evidence["results"])
    from saliency_audit.report.html import render

    assert 'id="human_benchmark"' not in render(evidence)


HUMAN_TEST = "from saliency_audit.suite.test_human import test_human_benchmark  # noqa: F401\n"


def test_the_suite_test_is_skipped_with_its_reason_or_runs_when_given(world, pytester):
    pytester.makepyfile(test_human=HUMAN_TEST)
    args = [f"--model={world / 'tiny.ts'}", "--dataset=folder", f"--data-root={world / 'data'}", "--methods=random",
            "--no-controls", "--input-size=64", f"--n-images={N_IMAGES}", "--no-sequential", "--audit-report=out",
            "-p", "no:cacheprovider", "-p", "no:xdist"]
    result = pytester.runpytest(*args, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*human_benchmark runs only with --human-annotations*"])
    evidence = json.loads((pytester.path / "out" / "evidence.json").read_text())
    assert evidence["results"] == [] and "human_benchmark" not in json.dumps(evidence.get("run", {}).get("plan", {}))

    result = pytester.runpytest(*args, f"--human-annotations={world / 'readers'}")
    result.assert_outcomes(passed=1)  # the random control fails, as a control must: its test passes
    evidence = json.loads((pytester.path / "out" / "evidence.json").read_text())
    (r,) = evidence["results"]
    assert r["criterion"] == "human_benchmark" and r["verdict"] == "fail"
    assert "human_benchmark" in (pytester.path / "out" / "saliency-audit.html").read_text()

    result = pytester.runpytest(*args, f"--human-annotations={world / 'nowhere'}")
    assert result.ret == 4 and "--human-annotations=" in str(result.stderr) + str(result.stdout)


def test_chexlocalize_and_box_table_readers_give_the_readers_marks_on_the_grid(tmp_path):
    """The two published forms of a second reader: CheXlocalize's contours JSON and a VinDr-style box table."""
    import json as _json

    from saliency_audit.data.human import load_human_annotations

    contours = {"a": {"img_size": [64, 64], "Nodule": [[[8, 8], [23, 8], [23, 23], [8, 23]]]},
                "b": {"img_size": [64, 64], "Edema": [[[0, 0], [10, 0], [10, 10]]]}}  # b: read, no Nodule marked
    (tmp_path / "hb.json").write_text(_json.dumps(contours))
    got = load_human_annotations(tmp_path / "hb.json", "nodule", ["a", "b", "c"], (32, 32),
                                 native={"a": (64, 64), "b": (64, 64), "c": (64, 64)})
    assert got.format == "chexlocalize" and got.missing == ["c"]
    a = got.get("a").mask
    assert a.shape == (32, 32) and a[4:12, 4:12].all() and a.sum() == 64  # the 16-px square, halved
    assert not got.get("b").mask.any()  # read, nothing marked: a miss, not a missing image
    (tmp_path / "r2.csv").write_text("image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n"
                                     "a,R2,Nodule,8,8,23,23\nb,R2,No finding,,,,\n")
    got = load_human_annotations(tmp_path / "r2.csv", "Nodule", ["a", "b", "c"], (32, 32),
                                 native={"a": (64, 64), "b": (64, 64), "c": (64, 64)})
    assert got.format == "box-table" and got.missing == ["c"]
    assert got.get("a").mask[4:12, 4:12].all() and got.get("a").mask.sum() == 64
    assert not got.get("b").mask.any()
