#include "device.h"

#include <cstdlib>

#ifdef POLYTUNE_HAS_CUDA
#include "cuda/api.h"
#endif

namespace pt {

Device parse_device(const std::string& s, const char* op) {
  if (s == "cpu") return kCpu;
  int index = -1;
  if (s == "cuda") {
    index = 0;
  } else if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 8 &&
             s.find_first_not_of("0123456789", 5) == std::string::npos) {
    index = std::atoi(s.c_str() + 5);
  } else {
    throw OpError(std::string(op) + ": unknown device '" + s + "' (expected cpu, cuda or cuda:N)");
  }
  if (!cuda_built()) throw OpError(not_built_with_cuda(std::string(op) + " on " + s));
#ifdef POLYTUNE_HAS_CUDA
  const int n = cuda::device_count();
  if (index >= n) {
    throw OpError(std::string(op) + ": device " + s + " does not exist (this machine has " + std::to_string(n) + " CUDA device" +
                  (n == 1 ? "" : "s") + ")");
  }
#endif
  return Device{Device::CUDA, index};
}

}  // namespace pt
