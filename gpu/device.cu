#include <cuda_runtime.h>

#include "locality/gpu.hpp"

namespace locality::gpu {

DeviceStatus query_device() {
  DeviceStatus status;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    status.reason = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    return status;
  }
  if (count == 0) {
    status.reason = "no usable CUDA device: cudaGetDeviceCount found 0 devices";
    return status;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    status.reason = "no usable CUDA device: cannot read device 0's properties";
    return status;
  }
  status.available = true;
  status.name = prop.name;
  return status;
}

}  // namespace locality::gpu
