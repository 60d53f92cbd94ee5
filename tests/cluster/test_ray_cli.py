"""--ray without a cluster: options and the missing extra (no Ray processes started here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_png

from edgecnn.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def test_without_ray_installed_exit_3_names_the_extra(tiny_onnx: Path, tmp_path: Path) -> None:
    write_png(tmp_path / "imgs" / "a.png")
    code = (
        "import sys\nsys.modules['ray'] = None  # as if the [ray] extra were not installed\n"
        "from edgecnn.cli import main\n"
        f"sys.argv = ['edgecnn', 'classify', {str(tmp_path / 'imgs')!r}, '-m', {str(tiny_onnx)!r}, "
        f"'-o', {str(tmp_path / 'r.csv')!r}, '--ray', 'auto']\n"
        "main()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 3, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "pip install 'edgecnn[ray]'" in lines[0]


@pytest.mark.parametrize("address", ["", "localhost", "ray://h:10001", "h:port"])
def test_bad_address_is_a_usage_error(address: str) -> None:
    from edgecnn.cluster import RayConfig

    with pytest.raises(UsageError, match="--ray: expected 'auto' or HOST:PORT"):
        RayConfig(address)


def test_local_only_options_with_ray_exit_2(tiny_onnx: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    write_png(tmp_path / "imgs" / "a.png")
    args = ["classify", str(tmp_path / "imgs"), "-m", str(tiny_onnx), "--ray", "auto", "--threads", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--ray-cpus-per-actor" in result.output


@pytest.mark.needs_ray
@pytest.mark.slow
def test_ray_auto_starts_a_local_cluster_with_token_auth(tiny_onnx: Path, tmp_path: Path) -> None:
    """--ray auto without RAY_ADDRESS: a local cluster for the run (Ray writes its token under $HOME)."""
    import os

    for i in range(5):
        write_png(tmp_path / "imgs" / f"{i}.png", seed=i)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    out = tmp_path / "r.csv"
    args = [str(tmp_path / "imgs"), "-m", str(tiny_onnx), "-o", str(out), "--ray", "auto", "--ray-actors", "1"]
    cmd = [sys.executable, "-m", "edgecnn", "classify", *args]
    rc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert rc.returncode == 0, rc.stderr
    assert out.read_text().count("\n") == 6
    assert "local (started for this run)" in rc.stdout
    assert (tmp_path / "home" / ".ray" / "auth_token").is_file()  # token auth was on


@pytest.mark.needs_ray
@pytest.mark.slow
def test_a_cluster_started_for_the_run_runs_its_workers_at_the_drivers_priority(tmp_path: Path) -> None:
    """Ray's default worker nice 15 lets any busy process on the machine starve a local run's inference."""
    import os

    code = (
        "import os\nfrom edgecnn.cluster.connect import ray_session\n"
        "with ray_session('auto'):\n"
        "    import ray\n"
        "    print('worker nice', ray.get(ray.remote(lambda: os.nice(0)).remote()), 'driver nice', os.nice(0))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[words.index("worker") + 2] == words[words.index("driver") + 2], out.stdout
