// The fused attention peers (ONNX Runtime, PyTorch), which live in Python:
// bench/fused_peers.py runs as a helper process beside locality_bench, and
// each attention problem asks it for its peers' timings in its own turn, so
// that they are measured seconds from the rungs, as the C++ peers are. The
// line protocol is in fused_peers.py's docstring.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "locality/attention.hpp"

namespace locality::bench {

// One answer: seconds per kernel call (the mean over `calls` calls), the
// check's worst error over the bound, the kernel path where the peer says;
// or `error` (the peer's wrong result or failure on this shape).
struct FusedTiming {
  double seconds = 0;
  long calls = 0;
  double max_error_over_bound = 0;
  std::string label;
  std::string error;
};

class FusedPeers {
 public:
  // Starts `python script --serve --peer P ...` and reads its context and
  // the peers that loaded. A helper that cannot start, or says nothing
  // sensible, leaves no peers, and left_out() says why.
  FusedPeers(const std::string& python, const std::string& script,
             const std::vector<std::string>& peers);
  ~FusedPeers();  // closes the helper's input and waits for it
  FusedPeers(const FusedPeers&) = delete;
  FusedPeers& operator=(const FusedPeers&) = delete;

  // The peers that loaded, in the order asked for.
  const std::vector<std::string>& peers() const { return ready_; }
  // What the helper reported (versions, overheads, <peer>_left_out), plus
  // fused_peers_left_out where the helper itself failed.
  const std::map<std::string, std::string>& context() const { return context_; }
  // The helper's process, whose threads must be idle before a timed run.
  pid_t pid() const { return pid_; }

  // Times `peer` on a problem for about `min_time` seconds. Once the helper
  // has failed (exited, garbled), every answer is an error saying so.
  FusedTiming time(const std::string& peer, const AttentionShape& shape, bool causal, int threads,
                   double min_time);

 private:
  bool read_line(std::string& line);
  void fail(const std::string& why);

  pid_t pid_ = -1;
  std::FILE* to_ = nullptr;  // the helper's stdin
  int from_ = -1;            // its stdout
  std::vector<std::string> ready_;
  std::map<std::string, std::string> context_;
  std::string failed_;  // why the helper is no longer usable
};

}  // namespace locality::bench
