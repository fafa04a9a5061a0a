#include "ops/embedding.h"

#include "cpu/embedding.h"
#include "ops/dispatch.h"

namespace pt::ops {

void embedding(const In& ids, const In& w, const Tensor& out) {
  const char* op = "embedding";
  const Device dev = same_device(op, {{"ids", &ids}, {"weight", &w}, {"out", &out}});
  need_dtype(op, "ids", ids, DType::I32);
  need_float(op, "weight", w);
  need_ndim(op, "weight", w, 2);
  need_dtype(op, "out", out, w.dtype);
  need_shape(op, "out", out, {ids.numel(), w.shape[1]});
  no_overlap(op, "out", out, "weight", w);
  no_overlap(op, "out", out, "ids", ids);
  const auto* id = static_cast<const int32_t*>(ids.data());
  switch (dev.kind) {
    case Device::CPU: pt::embedding_forward(w.dtype, ids.numel(), w.shape[0], w.shape[1], id, w.data(), out.data()); break;
    case Device::CUDA:
      PT_CUDA(op, cuda::embedding_forward(ctx(w), w.dtype, ids.numel(), w.shape[0], w.shape[1], id, w.data(), out.data()));
      break;
  }
}

void embedding_backward(const In& ids, const In& dout, const Tensor& dw) {
  const char* op = "embeddingBackward";
  const Device dev = same_device(op, {{"ids", &ids}, {"dout", &dout}, {"dweight", &dw}});
  need_dtype(op, "ids", ids, DType::I32);
  need_float(op, "dweight", dw);
  need_ndim(op, "dweight", dw, 2);
  need_dtype(op, "dout", dout, dw.dtype);
  need_shape(op, "dout", dout, {ids.numel(), dw.shape[1]});
  no_overlap(op, "dweight", dw, "dout", dout);
  no_overlap(op, "dweight", dw, "ids", ids);
  const auto* id = static_cast<const int32_t*>(ids.data());
  switch (dev.kind) {
    case Device::CPU: pt::embedding_backward(dw.dtype, ids.numel(), dw.shape[0], dw.shape[1], id, dout.data(), dw.data()); break;
    case Device::CUDA:
      PT_CUDA(op, cuda::embedding_backward(ctx(dw), dw.dtype, ids.numel(), dw.shape[0], dw.shape[1], id, dout.data(), dw.data()));
      break;
  }
}

}  // namespace pt::ops
