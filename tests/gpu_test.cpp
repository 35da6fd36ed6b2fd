// The GPU side: without a usable device every GPU test skips and says why.
#include "locality/gpu.hpp"

#include <gtest/gtest.h>

namespace locality {
namespace {

TEST(GpuDevice, QueryNeverThrowsAndExplainsAbsence) {
  const gpu::DeviceStatus status = gpu::query_device();
  if (!status.available) {
    EXPECT_FALSE(status.reason.empty());
    GTEST_SKIP() << status.reason;
  }
  EXPECT_FALSE(status.name.empty());
}

}  // namespace
}  // namespace locality
