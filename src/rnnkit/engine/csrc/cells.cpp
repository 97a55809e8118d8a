// rnnkit fused engine: one time step of each recurrence, forward and backward (buffers: see fused.h).
//
// Every step is: the recurrent matmul(s) (gemm.h), then ONE pass over the step's N x H elements (two for
// Cho's GRU, whose reset gate multiplies h before its second matmul) that applies the gates, the state
// update and the mask. The equations, the gate order and what is saved are those of engine/bptt.py, and with
// recurrent dropout and zoneout those of engine/masked.py:
//   recurrent dropout   h_{t-1} * m goes into the recurrent product (recurrent_input), and the product's
//                       gradient is multiplied by m on its way to dh_{t-1} (add_recurrent_grad)
//   zoneout (kZone)     h_t = z h_{t-1} + (1 - z) h^_t after the row's update (C_t likewise); backward:
//                       dh^_t = dh_t (1 - z) into the cell, dh_t z straight to dh_{t-1}
//   layer norm (kLN)    the row pass normalises x_t U in place (ln_input_row), the recurrent product goes to ln_buf
//                       and the row pass adds LN(h W) (ln_row) before the gates; the LSTM's h^_t =
//                       o_t tanh(LN(C^_t)); backward: each row first remakes its gates from the saved LN(h W) and
//                       the recomputed x_t U (rebuild_row); the gate gradients dG are LN(h W)'s output gradient,
//                       ln_row_backward turns them into dA, which the recurrent product's gradients take in place
//                       of dG
// Masked rows (past a sequence's end): see hold() and pass_back().
// The cells' steps live in cells_rnn_lstm.cpp and cells_gru.cpp, the pieces they share in step_common.h; this
// file picks a step and holds the product backends' settings.
#include "step_common.h"

namespace rnnkit {

Backend& forced_backend() {
  static Backend backend = Backend::kAuto;
  return backend;
}
Thresholds& thresholds() {
  static Thresholds t;
  return t;
}
bool& mkl_first() {
  static bool first = intel_cpu() && mkl_packed_available();
  return first;
}

template <typename S, bool kZone, bool kLN>
Step<S> step_of(Mode mode, bool backward) {
  const Step<S> step = is_gru(mode) ? gru_step<S, kZone, kLN>(mode, backward)
                                    : rnn_lstm_step<S, kZone, kLN>(mode, backward);
  TORCH_CHECK(step != nullptr, "rnnkit: unknown mode");
  return step;
}

template <typename S>
Step<S> pick_step(Mode mode, bool zoned, bool normed, bool backward) {
  if (normed) return zoned ? step_of<S, true, true>(mode, backward) : step_of<S, false, true>(mode, backward);
  return zoned ? step_of<S, true, false>(mode, backward) : step_of<S, false, false>(mode, backward);
}

template <typename S>
Step<S> forward_step(Mode mode, bool zoned, bool normed) {
  return pick_step<S>(mode, zoned, normed, false);
}

template <typename S>
Step<S> backward_step(Mode mode, bool zoned, bool normed) {
  return pick_step<S>(mode, zoned, normed, true);
}

template <typename S>
Row<S> rebuild_gates(Mode mode, bool zoned) {
  return is_gru(mode) ? gru_rebuild<S>(mode) : rnn_lstm_rebuild<S>(mode, zoned);
}

template Row<float> rebuild_gates<float>(Mode, bool);
template Row<double> rebuild_gates<double>(Mode, bool);
template Step<float> forward_step<float>(Mode, bool, bool);
template Step<double> forward_step<double>(Mode, bool, bool);
template Step<float> backward_step<float>(Mode, bool, bool);
template Step<double> backward_step<double>(Mode, bool, bool);

}  // namespace rnnkit
