// Peers: the libraries each ladder is measured against, in the same run.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "locality/attention.hpp"
#include "locality/matmul.hpp"

namespace locality::bench {

struct MatmulPeer {
  std::string_view name;  // "eigen", "onednn", "openblas": the benchmark's variant name
  MatmulFn run;           // C = A * B with this many threads
};

// Peers found at configure time; Eigen is always there.
std::span<const MatmulPeer> matmul_peers();

// Unfused attention through a peer's matrix products: S = Q K^T, the same
// softmax the attention rungs use (cpu/attention/common.hpp), O = P V; one
// head at a time, each product on `threads` threads, S materialized.
struct AttentionPeer {
  std::string_view name;  // "eigen", "onednn"
  AttentionFn run;
  AttentionWorkspaceFn workspace_floats;
};
std::span<const AttentionPeer> attention_peers();

// For the JSON context: how each peer ran (version, kernel path, threading).
std::vector<std::pair<std::string, std::string>> peer_context();

}  // namespace locality::bench
