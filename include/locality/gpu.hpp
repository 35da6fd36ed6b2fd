// GPU discovery, shared by every GPU entry point (tests, benchmarks, driver).
#pragma once

#include <string>

namespace locality::gpu {

struct DeviceStatus {
  bool available = false;  // at least one CUDA device can be used
  std::string reason;      // why not, one line, when !available
  std::string name;        // device 0's name, when available
};

// Never throws and never aborts: no CUDA in the build, no driver, or no
// device all come back as available == false with the reason.
DeviceStatus query_device();

}  // namespace locality::gpu
