# NT-ASGD: time of AveragedModel.update_parameters for the awd-cpu model, torch's default (per tensor on the CPU)
# vs foreach ("multi"; rnnkit.training.asgd.swa_average computes the same numbers bit for bit). One thread.
import time, torch
torch.set_num_threads(1)
from torch.optim.swa_utils import AveragedModel, get_swa_multi_avg_fn
from rnnkit.models.language_model import LanguageModel, LMConfig
cfg = LMConfig(vocab_size=10000, cell="lstm", embed_size=256, hidden_size=384, num_layers=3, dropout=0.3,
               embed_dropout=0.3, tie_weights=True, awd=True, last_hidden_size=256, word_dropout=0.05, layer_dropout=0.2, weight_drop=0.3)
m = LanguageModel(cfg)
from rnnkit.training.asgd import averaged_model
for name, kw in [("torch default (before)", {}), ("rnnkit.training.asgd.averaged_model (after)", None), ("torch lerp multi_avg_fn", dict(multi_avg_fn=get_swa_multi_avg_fn()))]:
    a = averaged_model(m) if kw is None else AveragedModel(m, use_buffers=True, **kw)
    a.update_parameters(m)
    t = time.perf_counter()
    for _ in range(20):
        with torch.no_grad():
            for p in m.parameters(): p.add_(0.001)
        a.update_parameters(m)
    print(name, (time.perf_counter()-t)/20*1000, "ms (incl. add_)")
t = time.perf_counter()
for _ in range(20):
    with torch.no_grad():
        for p in m.parameters(): p.add_(0.001)
print("add_ only", (time.perf_counter()-t)/20*1000)
