#include "quiet.hpp"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace locality::bench {
namespace {

// Nanoseconds on the CPU, summed over this process's threads but the
// caller; nullopt where /proc does not say.
std::optional<std::uint64_t> other_threads_cpu_ns() {
  DIR* tasks = opendir("/proc/self/task");
  if (!tasks) return std::nullopt;
  const std::string self = std::to_string(static_cast<long>(syscall(SYS_gettid)));
  std::uint64_t total = 0;
  bool read_any = false;
  while (const dirent* entry = readdir(tasks)) {
    const std::string tid = entry->d_name;
    if (tid == "." || tid == ".." || tid == self) continue;
    std::ifstream stat("/proc/self/task/" + tid + "/schedstat");
    std::uint64_t on_cpu_ns = 0;
    if (stat >> on_cpu_ns) {
      total += on_cpu_ns;
      read_any = true;
    }
  }
  closedir(tasks);
  // A lone thread has nothing to wait for; a thread that exits between the
  // listing and the read simply drops out of the sum.
  if (!read_any) return std::uint64_t{0};
  return total;
}

}  // namespace

void wait_for_idle_threads(const benchmark::State&) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kWindow = std::chrono::milliseconds(5);
  // Busy for under a tenth of the window: a wake-up or a timer, not a spin.
  constexpr std::uint64_t kQuietNs = 500'000;
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  std::optional<std::uint64_t> before = other_threads_cpu_ns();
  if (!before) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    return;
  }
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(kWindow);
    const std::optional<std::uint64_t> after = other_threads_cpu_ns();
    if (!after) return;
    if (*after < *before || *after - *before < kQuietNs) return;
    before = after;
  }
}

}  // namespace locality::bench
