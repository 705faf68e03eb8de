"""Ray Train DDP pretraining on a local Ray cluster (real gloo process group, real checkpoints)."""

from dataclasses import replace

import pytest
import torch

from anomclr_ray.train.distributed import ScalingSpec, load_result_checkpoint, pretrain_distributed
from anomclr_ray.events.dataset import DataConfig, load_dataset
from anomclr_ray.events.preprocess import Preprocessor
from anomclr_ray.method.model import ModelConfig
from anomclr_ray.method.model import represent
from anomclr_ray.train import TrainConfig, pretrain

MODEL = ModelConfig(model_dim=16, heads=2, layers=1, feedforward_dim=16, output_dim=16, dropout=0.0)
CPU = torch.device("cpu")


def _comparable(state: dict) -> dict:
    """The weights without the attention key biases: softmax ignores a shift shared by all keys, so their
    gradient is rounding noise, which Adam's first step (lr * g/|g|) turns into +-lr in any run."""
    d = MODEL.model_dim
    return {n: (w[:d] if n.endswith("in_proj_bias") else w) for n, w in state.items()} | {
        f"{n}.values": w[2 * d:] for n, w in state.items() if n.endswith("in_proj_bias")}


# Through Ray Train: AnomCLR (global negatives, gathered), AnomCLR+ (nothing gathered) and SupCon (labels
# gathered too). Every loss's value and gradient under a real 2-process gloo group, against one process, is
# test_ddp_gradients.py's; CLR and SimCLR gather as AnomCLR does (`losses._similarities`). VICReg
# cannot compare weights here: Adam's first step turns the float noise of its near-zero head-bias gradients
# into whole learning-rate steps.
THROUGH_RAY_TRAIN = ("anomclr", "anomclr_plus", "supcon")


@pytest.mark.slow
@pytest.mark.parametrize("loss", THROUGH_RAY_TRAIN)
def test_ddp_step_matches_one_worker_and_one_device(local_ray, tmp_path, loss):
    """One global batch = one step: the loss and the updated weights of 2 Ray Train workers equal those
    of the plain loop (CLR and AnomCLR take their negatives from the global batch), and, for one loss
    (a single worker gathers nothing, whatever the loss), those of 1 worker."""
    data = DataConfig(n_train=256, n_test=1, n_test_signal=1)
    cfg = TrainConfig(loss=loss, epochs=1, batch_size=256, learning_rate=1e-3, seed=11)
    events = load_dataset(data)
    pre = Preprocessor.fit(events.train)
    two = pretrain_distributed(data, MODEL, cfg, ScalingSpec(num_workers=2), tmp_path, "two", pre)
    runs = [two]
    if loss == "anomclr":
        runs.append(pretrain_distributed(data, MODEL, cfg, ScalingSpec(num_workers=1), tmp_path, "one", pre))
    local, local_history = pretrain(events.train, pre, MODEL, cfg, CPU, log=None, labels=events.train_labels)
    for run in runs:
        assert run.metrics["loss_history"][0] == pytest.approx(local_history[0], rel=1e-5)
    for other in runs:
        weights = _comparable(load_result_checkpoint(other, CPU)[0].state_dict())
        for name, w in _comparable(local.state_dict()).items():
            torch.testing.assert_close(weights[name], w, rtol=1e-4, atol=1e-6, msg=name)
    model, pre2, cfg2, history = load_result_checkpoint(two, CPU)  # the checkpoint reloads
    assert pre2 == pre and cfg2 == cfg and torch.isfinite(torch.tensor(history)).all()
    assert represent(model, pre2, load_dataset(data).train[:8], CPU).shape == (8, 16)


@pytest.mark.slow
def test_killed_run_resumes_from_its_latest_checkpoint(local_ray, tmp_path):
    """With the default dropout (0.1): the masks are seeded by (seed, epoch, rank) like the batches and
    views, so the resumed history is the uninterrupted one (to float32 rounding of the gathered loss)."""
    data = DataConfig(n_train=512, n_test=1, n_test_signal=1)
    model = replace(MODEL, dropout=ModelConfig().dropout)
    base = dict(loss="anomclr", batch_size=128, learning_rate=1e-3, seed=2)
    full = pretrain_distributed(data, model, TrainConfig(epochs=3, **base), ScalingSpec(2), tmp_path, "full")
    # a run that stopped after 1 of 3 epochs, then the same run (same storage and name) asked for 3
    pretrain_distributed(data, model, TrainConfig(epochs=1, **base), ScalingSpec(2), tmp_path, "cut")
    resumed = pretrain_distributed(data, model, TrainConfig(epochs=3, **base), ScalingSpec(2), tmp_path, "cut")
    assert len(resumed.metrics["loss_history"]) == 3
    assert resumed.metrics["loss_history"] == pytest.approx(full.metrics["loss_history"], rel=1e-6)


def test_a_plain_run_resumed_with_the_default_dropout_repeats_the_uninterrupted_one():
    """The plain loop, CPU: 1 epoch, a checkpoint's state (weights, optimiser) into a fresh process's
    objects, 2 more; against 3 in one go. Exactly equal: the same operations on the same device."""
    from anomclr_ray.train.loop import new_training, train_epochs

    events = load_dataset(DataConfig(n_train=256, n_test=1, n_test_signal=1)).train
    pre, model_cfg = Preprocessor.fit(events), replace(MODEL, dropout=ModelConfig().dropout)
    cfg = TrainConfig(loss="anomclr_plus", batch_size=64, learning_rate=1e-3, epochs=3, seed=4)
    data = torch.as_tensor(events)
    model, opt = new_training(model_cfg, cfg, CPU)
    full = train_epochs(model, opt, data, pre, cfg, [])
    model, opt = new_training(model_cfg, cfg, CPU)
    cut = train_epochs(model, opt, data, pre, replace(cfg, epochs=1), [])
    state = {"model": model.state_dict(), "opt": opt.state_dict()}
    torch.manual_seed(123)  # another process: the global generator is wherever it is
    model, opt = new_training(model_cfg, cfg, CPU)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    assert train_epochs(model, opt, data, pre, cfg, cut) == full


def test_batch_must_split_evenly_over_workers(tmp_path):
    with pytest.raises(ValueError, match=r"batch_size \(100\) must be a multiple of the 3 workers"):
        pretrain_distributed(DataConfig(n_train=512), MODEL, TrainConfig(batch_size=100), ScalingSpec(3), tmp_path, "x")
