// Checked CUDA calls and device memory, for everything under gpu/.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "locality/gpu.hpp"
#include "locality/matrix.hpp"

namespace locality::gpu {

[[noreturn]] inline void fail(const char* call, const char* file, int line, const char* what) {
  throw GpuError(std::string(file) + ":" + std::to_string(line) + ": " + call + ": " + what);
}

// Every CUDA runtime call goes through this: a failure throws GpuError.
#define LOCALITY_CUDA(call)                                                                \
  do {                                                                                     \
    const cudaError_t locality_err_ = (call);                                              \
    if (locality_err_ != cudaSuccess)                                                      \
      ::locality::gpu::fail(#call, __FILE__, __LINE__, cudaGetErrorString(locality_err_)); \
  } while (0)

// After every kernel launch: a bad configuration shows up here.
#define LOCALITY_CUDA_LAUNCHED() LOCALITY_CUDA(cudaGetLastError())

__host__ __device__ inline constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Device memory for `count` elements of T; freed when it goes out of scope.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count_ > 0) {
      LOCALITY_CUDA(cudaMalloc(&data_, checked_mul(count_, sizeof(T), "a device buffer")));
    }
  }
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);  // nothing to do about a failure here
  }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return data_; }
  std::size_t size() const { return count_; }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace locality::gpu
