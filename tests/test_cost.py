"""The cost model: FLOPs that scale with the profile, the scheduler's wall time, and the
tiny estimate against a measured build (a stored timing file, not a timed test)."""

import json
from pathlib import Path

import pytest

from segqual_lite import cost
from segqual_lite.config import get_profile
from segqual_lite.experiment import counterfactual_rows
from segqual_lite.rows import CONTROL_ROWS, EXTENDED_ROWS, TABLE_ROWS
from segqual_lite.scheduler import grid_jobs

MEASURED = Path(__file__).parent / "data" / "grid-timings-tiny.json"
ROOT = Path("<data>")


def test_flops_scale_with_the_image_and_the_width():
    small = cost.unet_flops(64, 8, 4)
    assert cost.unet_flops(128, 8, 4) == pytest.approx(4 * small, rel=1e-6)
    assert 3.5 * small < cost.unet_flops(64, 16, 4) < 4.1 * small  # the first layer reads 3
    assert cost.unet_flops(64, 8, 4, "hcnn") > small  # one more 1x1 head
    g = cost.quality_flops(64, (8, 16, 32, 64), 5)
    assert cost.quality_flops(128, (8, 16, 32, 64), 5) == pytest.approx(4 * g, rel=1e-4)


def test_the_wall_time_follows_the_scheduler_s_policy():
    a, b, c = ("a",), ("b",), ("c",)
    jobs = {a: frozenset(), b: frozenset(), c: frozenset({a})}
    seconds = {a: 3.0, b: 2.0, c: 1.0}
    assert cost.wall_seconds(jobs, seconds, 1) == 6.0
    assert cost.wall_seconds(jobs, seconds, 2) == 4.0  # c waits for a, not for b
    with pytest.raises(ValueError, match="do not exist"):
        cost.wall_seconds({c: frozenset({a})}, seconds, 2)


def test_a_job_costs_more_with_epochs_images_and_samples():
    tiny = get_profile("tiny")
    f = ("f", ROOT, "plain", 0, None)
    assert cost.job_seconds(f, tiny.with_(epochs_f=28)) > 1.8 * cost.job_seconds(f, tiny)
    mc = ("maps", ROOT, "mc_dropout", 0, "test", False)
    plain = ("maps", ROOT, "max_prob", 0, "test", False)
    assert cost.job_work(mc, tiny)[1] == tiny.mc_samples * cost.job_work(plain, tiny)[1]
    fold = ("f", ROOT, "plain", 0, (0, 2))
    assert cost.job_work(fold, tiny)[1] < cost.job_work(f, tiny)[1]
    paper = get_profile("paper")
    assert cost.job_seconds(f, paper, "cuda") < cost.job_seconds(f, paper, "cpu") / 50
    with pytest.raises(ValueError, match="no throughput measured for 'mps'"):
        cost.device_key("mps")


def test_the_tiny_estimate_is_within_25_percent_of_a_measured_build():
    """The grid of a clean ``make book`` on 2 CPU cores (stored with its commit), against
    the model's estimate of the same jobs with the same 2 workers."""
    measured = json.loads(MEASURED.read_text())
    tiny = get_profile("tiny")
    jobs = grid_jobs(tiny, (*TABLE_ROWS, *CONTROL_ROWS, *EXTENDED_ROWS), tiny.seeds, ROOT)
    if measured["counterfactual"]:
        jobs |= grid_jobs(tiny, counterfactual_rows(), tiny.seeds, Path("<data without rims>"))
    estimate = cost.grid_cost(tiny, jobs, measured["workers"], "cpu")
    assert estimate["wall_seconds"] == pytest.approx(measured["wall_s"], rel=0.25)
    assert estimate["worker_seconds"] == pytest.approx(measured["worker_seconds"], rel=0.25)
