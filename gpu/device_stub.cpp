// Built when no CUDA compiler was found at configure time.
#include "locality/gpu.hpp"

namespace locality::gpu {

DeviceStatus query_device() {
  return {false, "no usable CUDA device: this build has no CUDA support (nvcc was not found)", ""};
}

}  // namespace locality::gpu
