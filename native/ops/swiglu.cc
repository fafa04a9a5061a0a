#include "ops/swiglu.h"

#include "cpu/swiglu.h"
#include "ops/dispatch.h"

namespace pt::ops {

void swiglu(const In& g, const In& u, const Tensor& out) {
  const char* op = "swiglu";
  const Device dev = same_device(op, {{"gate", &g}, {"up", &u}, {"out", &out}});
  need_float(op, "gate", g);
  need_same(op, g, "gate", u, "up");
  need_same(op, g, "gate", out, "out");
  no_overlap(op, "out", out, "gate", g, true);
  no_overlap(op, "out", out, "up", u, true);
  switch (dev.kind) {
    case Device::CPU: pt::swiglu_forward(g.dtype, g.numel(), g.data(), u.data(), out.data()); break;
    case Device::CUDA: PT_CUDA(op, cuda::swiglu_forward(ctx(g), g.dtype, g.numel(), g.data(), u.data(), out.data())); break;
  }
}

void swiglu_backward(const In& g, const In& u, const In& dout, const Tensor& dg, const Tensor& du) {
  const char* op = "swigluBackward";
  const Device dev = same_device(op, {{"gate", &g}, {"up", &u}, {"dout", &dout}, {"dgate", &dg}, {"dup", &du}});
  need_float(op, "gate", g);
  need_same(op, g, "gate", u, "up");
  need_same(op, g, "gate", dout, "dout");
  need_same(op, g, "gate", dg, "dgate");
  need_same(op, g, "gate", du, "dup");
  for (auto [on, o] : {Named{"dgate", &dg}, Named{"dup", &du}}) {
    for (auto [n, t] : {Named{"gate", &g}, Named{"up", &u}, Named{"dout", &dout}}) no_overlap(op, on, *o, n, *t, true);
  }
  no_overlap(op, "dgate", dg, "dup", du);
  switch (dev.kind) {
    case Device::CPU: pt::swiglu_backward(g.dtype, g.numel(), g.data(), u.data(), dout.data(), dg.data(), du.data()); break;
    case Device::CUDA:
      PT_CUDA(op, cuda::swiglu_backward(ctx(g), g.dtype, g.numel(), g.data(), u.data(), dout.data(), dg.data(), du.data()));
      break;
  }
}

}  // namespace pt::ops
