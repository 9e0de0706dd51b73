"""Head to head: a LoRA run and a tuning-free run of the demo subject, side by side with paired CIs."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd

from workbench.cli import main
from workbench.demo import DemoConfig, run_demo
from workbench.evaluate import EvalConfig, compare_runs
from workbench.evaluate.compare import paired_differences
from workbench.generate import GenerateConfig, run_generate


def test_paired_difference_recovers_a_known_shift_and_ignores_unpaired_images():
    rng = np.random.default_rng(0)
    n = 30
    a = pd.DataFrame({"seed": range(n), "preset": "corporate", "centroid_distance": rng.uniform(0.3, 0.7, n),
                      "verified": 1.0})  # fmt: skip
    b = a.copy()
    b["centroid_distance"] = a["centroid_distance"] - 0.1 + rng.normal(0, 0.01, n)  # B is closer by 0.1
    b = pd.concat([b, pd.DataFrame({"seed": [99], "preset": ["corporate"], "centroid_distance": [5.0],
                                    "verified": [0.0]})])  # fmt: skip
    paired, n_pairs = paired_differences(a, b, EvalConfig(n_boot=400))
    assert n_pairs == n
    est = paired["centroid_distance"]
    assert abs(est.est + 0.1) < 0.01 and est.hi < 0 and est.n == n
    # Between independent arms the per-image spread (0.3-0.7) would swamp a 0.1 shift; pairing removes it.
    assert est.hi - est.lo < 0.02
    assert paired["verified"].est == 0.0


def test_lora_vs_tuning_free_of_the_demo_subject(workspace):
    demo = run_demo(DemoConfig(train_steps=2, images_per_preset=2, generate_steps=2), workspace)
    lora_run = demo.paths["images"]
    tuning_free = run_generate(
        "demo",
        GenerateConfig(identity="ip-adapter-faceid", presets=["corporate", "executive"], count=4, steps=2, seed=0,
                       resolution=64, batch_size=2),
        workspace=workspace,
    )  # fmt: skip
    result = compare_runs("demo", lora_run, tuning_free.run_name, EvalConfig(n_boot=200), workspace=workspace)
    assert result.arms["A"]["identity"] == "lora" and result.arms["B"]["identity"] == "ip-adapter-faceid"
    assert result.n_pairs == 4  # same seeds 0-3 and the same preset per seed in both runs
    for column in ("verified", "face_found", "usable"):
        assert result.paired[column].n == 4 and result.paired[column].lo <= result.paired[column].hi
    data = json.loads(result.files["json"].read_text())
    assert set(data["arms"]) == {"A", "B"} and "usable yield" in data["arms"]["B"]["estimates"]
    assert data["paired_difference_b_minus_a"]["verified"]["n"] == 4
    markdown = result.files["markdown"].read_text()
    assert "Paired difference B - A (4 pairs" in markdown and "ip-adapter-faceid" in markdown
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["n_pairs"] == 4


def test_compare_command_prints_json(workspace, capsys):
    demo = run_demo(DemoConfig(train_steps=1, images_per_preset=1, generate_steps=1), workspace)
    first = demo.paths["images"]
    assert main(["compare", "--subject", "demo", first, first, "--n-boot", "50", "--json",
                 "--workspace", str(workspace.root)]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["n_pairs"] == 2 and data["arms"]["A"]["identity"] == "lora"
    assert data["paired_difference_b_minus_a"]["usable"]["est"] == 0.0  # a run against itself differs by 0
