# One training step of the awd-cpu model (or ptb-tied's, arg 2 "tied") outside the CLI, on random tokens: which engine
# each layer resolves to, ms/step, and with --prof torch.profiler's table. Usage: python THIS THREADS awd|tied [--prof]
import sys, time, torch, cProfile, pstats, warnings
warnings.simplefilter("always")
from rnnkit.models.language_model import LanguageModel, LMConfig, detach_state, lm_loss
from rnnkit.models.awd import activation_regularisation, temporal_activation_regularisation
from rnnkit.engine import resolve
torch.manual_seed(0)
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
kind = sys.argv[2] if len(sys.argv) > 2 else "awd"
if kind == "awd":
    cfg = LMConfig(vocab_size=10000, cell="lstm", embed_size=256, hidden_size=384, num_layers=3, dropout=0.3,
                   embed_dropout=0.3, tie_weights=True, init_range=None, awd=True, last_hidden_size=256,
                   word_dropout=0.05, layer_dropout=0.2, weight_drop=0.3)
    T = 50
else:
    cfg = LMConfig(vocab_size=10000, cell="lstm", embed_size=256, hidden_size=256, num_layers=2, dropout=0.3,
                   tie_weights=True, init_range=0.1)
    T = 35
m = LanguageModel(cfg); m.train()
print(m)
# which engine
orig = resolve.resolve_engine
def spy(engine, cell, x, **kw):
    r = orig(engine, cell, x, **kw); spy.seen.add((engine, r, tuple(sorted(kw.get("needs", ())))));  return r
spy.seen = set()
import rnnkit.layers.recurrent as lr; lr.resolve_engine = spy
opt = torch.optim.SGD(m.parameters(), lr=1.0)
x = torch.randint(0, 10000, (T, 20)); y = torch.randint(0, 10000, (T, 20))
state = None
def stepf():
    global state
    logits, st, (raw, dropped) = m(x, state, activations=True)
    state = detach_state(st)
    loss = lm_loss(logits, y) + activation_regularisation(dropped, 2.0) + temporal_activation_regularisation(raw, 1.0)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 0.25); opt.step()
for _ in range(3): stepf()
print("engines:", spy.seen)
n = 20
t = time.perf_counter()
for _ in range(n): stepf()
dt = (time.perf_counter() - t) / n
print(f"{kind}: {dt*1000:.1f} ms/step, {1/dt:.2f} steps/s, {T*20/dt:.0f} tok/s")
if "--prof" in sys.argv:
    from torch.profiler import profile
    with profile() as p:
        for _ in range(5): stepf()
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
