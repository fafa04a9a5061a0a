// copy: dst = src across devices (the one op whose tensors may live on different devices; Tensor.to()
// is built on it). Same dtype and element count; the bytes are copied as they are.
#pragma once
#include "ops/check.h"

namespace pt::ops {
void copy(const In& src, const Tensor& dst);
// Host <-> tensor byte transfers for readBytes/writeBytes, by the tensor's device.
void read_bytes(const Tensor& t, size_t offset, void* host, size_t len);
void write_bytes(const Tensor& t, size_t offset, const void* host, size_t len);
}
