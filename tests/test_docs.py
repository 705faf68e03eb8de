"""Every command the README and docs/ show runs as written: `anomclr` lines parse and build their
config, study-script lines build their whole StudyConfig (every reachable trial config checked) without
starting Ray; the other scripts named exist. Links between the pages point at files that exist."""

import re
import shlex
import sys

import pytest
from conftest import REPO

from anomclr_ray import study_script
from anomclr_ray.cli import _job, build_parser
from anomclr_ray.method.evaluate import ScoreJob
from anomclr_ray.nplm import NPLMJob
from anomclr_ray.train import PretrainJob

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _commands() -> list[tuple[str, list[str]]]:
    out = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words and (words[0] == "anomclr" or words[:2] and words[0] == "python" and words[1].startswith("studies/")):
                    out.append((page.name, words))
    return out


COMMANDS = _commands()


def test_the_pages_show_the_tour_commands():
    shown = {" ".join(w[:2]) for _, w in COMMANDS}
    assert {"anomclr pretrain", "anomclr score", "anomclr nplm", "anomclr ui", "anomclr validate",
            "python studies/ablation_augmentations.py", "python studies/loss_comparison.py"} <= shown


@pytest.mark.parametrize("page, words", COMMANDS, ids=[f"{p}: {' '.join(w)[:70]}" for p, w in COMMANDS])
def test_every_command_shown_runs_as_written(page, words, monkeypatch):
    if words[0] == "anomclr":
        args = build_parser().parse_args(words[1:])
        job = {"pretrain": PretrainJob, "score": ScoreJob, "nplm": NPLMJob}.get(args.command)
        if job:
            _job(job, args)  # every --set key and value is valid
        return
    script = REPO / words[1]
    assert script.exists(), f"{page}: {words[1]} does not exist"
    if "study_script.run(" not in script.read_text():
        return  # a benchmark: its own parser
    built = []
    monkeypatch.setattr(study_script, "run", lambda study, args: built.append(study))
    monkeypatch.setattr(sys, "argv", words[1:])
    monkeypatch.syspath_prepend(str(REPO / "studies"))
    namespace: dict = {"__name__": "shown"}
    exec(compile(script.read_text(), str(script), "exec"), namespace)
    namespace["main"]()
    assert len(built) == 1 and built[0].name


def test_links_between_the_pages_point_at_files():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
