"""The README's bonus-import example runs as printed."""

import re
import runpy
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_import_example_runs(tmp_path, capsys):
    example = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    assert "make_bonus" in example and "stable_baselines3" not in example
    script = tmp_path / "example.py"
    script.write_text(example.replace("n_envs, n_steps = 8, 128", "n_envs, n_steps = 4, 32"))
    runpy.run_path(str(script), run_name="__main__")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("loss" in line for line in lines)
