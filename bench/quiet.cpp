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
#include <vector>

namespace locality::bench {
namespace {

std::vector<pid_t>& helpers() {
  static std::vector<pid_t> pids;
  return pids;
}

// Nanoseconds on the CPU of the threads listed in `dir` (a /proc/.../task),
// but `skip`; adds to `total`, and says whether any could be read.
bool add_threads_cpu_ns(const std::string& dir, const std::string& skip, std::uint64_t& total) {
  DIR* tasks = opendir(dir.c_str());
  if (!tasks) return false;
  bool read_any = false;
  while (const dirent* entry = readdir(tasks)) {
    const std::string tid = entry->d_name;
    if (tid == "." || tid == ".." || tid == skip) continue;
    std::ifstream stat(dir + "/" + tid + "/schedstat");
    std::uint64_t on_cpu_ns = 0;
    if (stat >> on_cpu_ns) {
      total += on_cpu_ns;
      read_any = true;
    }
  }
  closedir(tasks);
  return read_any;
}

// Nanoseconds on the CPU, summed over this process's threads but the
// caller, and over the helper processes' threads; nullopt where /proc does
// not say.
std::optional<std::uint64_t> other_threads_cpu_ns() {
  const std::string self = std::to_string(static_cast<long>(syscall(SYS_gettid)));
  std::uint64_t total = 0;
  if (!add_threads_cpu_ns("/proc/self/task", self, total)) {
    // A lone thread has nothing to wait for; no /proc, nothing to read.
    if (access("/proc/self/task", R_OK) != 0) return std::nullopt;
  }
  // A thread (or a helper) that exits between the listing and the read
  // simply drops out of the sum.
  for (pid_t pid : helpers())
    add_threads_cpu_ns("/proc/" + std::to_string(pid) + "/task", "", total);
  return total;
}

}  // namespace

void also_wait_for(pid_t helper) { helpers().push_back(helper); }

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
