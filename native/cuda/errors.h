// The two CUDA failures a caller must tell apart from a bad argument (OpError): running out of device
// memory (recoverable: free something, shrink the batch) and a CUDA API or kernel fault (the op, the
// call and whether the context is now unusable). No CUDA headers: the op layer and the bindings
// include this with g++ alone, and map each type to its own JS error code.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>

namespace pt::cuda {

struct OutOfMemory : std::runtime_error {
  int device;
  size_t requested, in_use, reserved, total;
  OutOfMemory(int device, size_t requested, size_t in_use, size_t reserved, size_t total, const std::string& what);
};

struct CudaError : std::runtime_error {
  std::string api;    // the call, or the op whose launch or sync failed
  std::string code;   // cudaGetErrorName, e.g. cudaErrorIllegalAddress
  std::string where;  // file:line of the check
  bool sticky;        // the context is corrupted: every later call on this device fails at once
  CudaError(const std::string& api, const std::string& code, const std::string& where, bool sticky,
            const std::string& what);
};

// "1.50 GiB", as PyTorch's OOM message reads.
std::string format_bytes(size_t bytes);

}  // namespace pt::cuda
