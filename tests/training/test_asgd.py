"""NT-ASGD (rnnkit.training.asgd): the trigger, and the averaged model is the mean of the iterates (torch's
AveragedModel does the averaging)."""
from __future__ import annotations

import torch
from torch import nn

from rnnkit.training.asgd import NTASGD


def test_trigger_is_non_monotone():
    nt = NTASGD(nn.Linear(2, 1), nonmono=2)
    for loss in (5.0, 4.0, 3.0, 2.9, 2.8):
        assert not nt.validated(loss)
    assert nt.model_for_eval() is nt.model
    assert nt.validated(3.5)            # worse than the best before the last 2 checks (3.0): averaging starts
    assert nt.model_for_eval() is not nt.model


def test_averaged_model_is_the_mean_of_the_iterates():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    nt = NTASGD(model, nonmono=1)
    for loss in (3.0, 2.0, 2.5, 3.5):
        nt.validated(loss)
    assert nt.averaging
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    iterates = []
    for _ in range(4):
        opt.zero_grad()
        model(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
        nt.step()
        iterates.append([p.detach().clone() for p in model.parameters()])
    averaged = nt.model_for_eval()
    for k, p in enumerate(averaged.parameters()):
        torch.testing.assert_close(p, torch.stack([it[k] for it in iterates]).mean(0))
    assert averaged is not model
