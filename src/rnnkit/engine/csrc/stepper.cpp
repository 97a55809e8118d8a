// rnnkit fused engine: the generation path. One call advances every layer of a stacked RNN by one step.
//
// Stepper(mode, weights, batch)   weights: per layer [w_ih, w_hh, b_ih, b_hh] (biases may be None) and, for an
//                                 LSTM that projects its state, w_hr fifth (then h is (L, N, P)); float32 or
//                                 float64, read when constructed: the products' packed copies are made once
//                                 here, so a Stepper serves a model whose weights no longer change (the Python
//                                 side keys its cache on the parameters' versions)
// step(x, h, c) -> [h', c']       x (N, I) the first layer's input; h, c (L, N, H) the states (c: LSTM only,
//                                 else None); returns fresh (L, N, H) tensors; h'[L-1] is the output
//
// Per layer: x U + b (one product), then the same forward step as the time loop (cells.cpp), i.e. the
// recurrent product(s) and one fused pass over the gates; the layer's new h is the next layer's input. No
// dropout between layers: this is inference.
#include <ATen/ops/empty_like.h>
#include <torch/csrc/utils/pybind.h>

#include <memory>
#include <vector>

#include "fused.h"

namespace rnnkit {
namespace {

struct StepperBase {
  virtual ~StepperBase() = default;
  virtual std::vector<at::Tensor> step(const at::Tensor& x, const at::Tensor& h, const at::Tensor& c) = 0;
};

template <typename S>
struct StepperImpl : StepperBase {
  struct Layer {
    Weights w;
    Product<S> input;          // x U (k = I, n = GH), packed once
    Ctx<S> ctx;                // the recurrent product(s) and the step's buffers: gates (1, N, GH), hs (2, N, P),
                               // cs (2, N, H), cell_out (1, N, H) with a projection
  };
  Mode mode;
  int64_t N;
  std::vector<Layer> layers;

  StepperImpl(Mode m, const std::vector<std::vector<std::optional<at::Tensor>>>& weights, int64_t batch)
      : mode(m), N(batch) {
    for (const auto& lw : weights) {
      TORCH_CHECK((lw.size() == 4 || lw.size() == 5) && lw[0].has_value() && lw[1].has_value(),
                  "rnnkit fused: each layer needs [w_ih, w_hh, b_ih, b_hh] (and w_hr with a projection)");
      const std::optional<at::Tensor> w_hr = lw.size() == 5 ? lw[4] : std::nullopt;
      Layer layer{Weights(m, lw[0]->contiguous(), *lw[1], lw[2], lw[3], w_hr), Product<S>(), Ctx<S>()};
      layer.input.init(layer.w.w_ih.t(), N);
      layer.ctx = make_ctx<S>(m, layer.w, N, true, false);
      const auto opt = layer.w.w_hh.options();
      const int64_t H = layer.ctx.H, P = layer.ctx.P, GH = layer.ctx.GH;
      layer.ctx.hs = at::empty({2, N, P}, opt);
      if (m == Mode::kLstm) layer.ctx.cs = at::empty({2, N, H}, opt);
      if (layer.ctx.projected) layer.ctx.cell_out = at::empty({1, N, H}, opt);
      if (!is_rnn(m)) layer.ctx.gates = at::empty({1, N, GH}, opt);
      if (m == Mode::kGruResetAfter) layer.ctx.hw_n = at::empty({1, N, H}, opt);
      layers.push_back(std::move(layer));
    }
  }

  std::vector<at::Tensor> step(const at::Tensor& x, const at::Tensor& h, const at::Tensor& c) override {
    const int64_t L = static_cast<int64_t>(layers.size());
    TORCH_CHECK(x.dim() == 2 && x.size(0) == N, "rnnkit fused: the stepper was made for batch ", N, ", got x of ",
                x.sizes());
    TORCH_CHECK(h.dim() == 3 && h.size(0) == L && h.size(1) == N, "rnnkit fused: h must be (", L, ", ", N,
                ", H), got ", h.sizes());
    const bool lstm = mode == Mode::kLstm;
    TORCH_CHECK(!lstm || (c.defined() && c.dim() == 3 && c.size(0) == L && c.size(1) == N),
                "rnnkit fused: the LSTM needs c shaped (L, N, H)");
    at::Tensor h_out = at::empty_like(h), c_out = lstm ? at::empty_like(c) : at::Tensor();
    const Step<S> forward = forward_step<S>(mode);
    at::Tensor input = x.contiguous();
    for (int64_t l = 0; l < L; ++l) {
      Layer& layer = layers[l];
      Ctx<S>& ctx = layer.ctx;
      at::Tensor target = is_rnn(mode) ? ctx.hs.select(0, 1) : ctx.gates.select(0, 0);   // x_t U (step adds b)
      layer.input.run(target, input, false);
      ctx.hs.select(0, 0).copy_(h.select(0, l));
      if (lstm) ctx.cs.select(0, 0).copy_(c.select(0, l));
      ctx.mask = nullptr;
      forward(ctx, 0);
      h_out.select(0, l).copy_(ctx.hs.select(0, 1));
      if (lstm) c_out.select(0, l).copy_(ctx.cs.select(0, 1));
      input = h_out.select(0, l);
    }
    return {h_out, c_out};
  }
};

struct Stepper {
  std::unique_ptr<StepperBase> impl;
  Stepper(const std::string& mode_name, const std::vector<std::vector<std::optional<at::Tensor>>>& weights,
          int64_t batch) {
    TORCH_CHECK(!weights.empty() && weights[0].size() >= 4 && weights[0][0].has_value(),
                "rnnkit fused: the stepper needs at least one layer's weights");
    const Mode mode = parse_mode(mode_name);
    c10::AutoGradMode no_grad(false);
    AT_DISPATCH_FLOATING_TYPES(weights[0][0]->scalar_type(), "rnnkit_stepper", [&] {
      impl = std::make_unique<StepperImpl<scalar_t>>(mode, weights, batch);
    });
  }
  std::vector<at::Tensor> step(const at::Tensor& x, const at::Tensor& h, const std::optional<at::Tensor>& c) {
    c10::AutoGradMode no_grad(false);
    return impl->step(x, h, c.has_value() ? *c : at::Tensor());
  }
};

}  // namespace

void bind_stepper(pybind11::module& m) {
  pybind11::class_<Stepper>(m, "Stepper", "every layer of a stacked RNN one step ahead per call (stepper.cpp)")
      .def(pybind11::init<const std::string&, const std::vector<std::vector<std::optional<at::Tensor>>>&, int64_t>())
      .def("step", &Stepper::step, "step(x (N, I), h (L, N, H), c (L, N, H) or None) -> [h', c']");
}

}  // namespace rnnkit
