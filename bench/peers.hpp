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
  // Why it would run below its best on this machine ("" if not); none: never.
  std::string (*misconfigured)() = nullptr;
};

// Peers found at configure time that passed the screen: each one is first run
// in a child process on a few awkward shapes and checked against Eigen, so
// that a peer that crashes, hangs or answers wrongly is left out (and
// peer_context() says why) instead of ending the run; and a peer running
// kernels below what the CPU offers (a misconfiguration) is left out too.
// Eigen is always there. Call it before any OpenMP team has started (the
// screen forks).
std::span<const MatmulPeer> matmul_peers();

// The screen for one peer: runs it in a child process on shapes with ragged
// edges, 1 and 2 threads, against Eigen's double reference; "" if it passed,
// else what went wrong (a signal, a wrong answer, no answer in timeout_s).
std::string screen_peer(const MatmulPeer& peer, unsigned timeout_s = 60);

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

// The peers loaded with dlopen or linked under prefixed names
// (bench/peers_loaded.cpp), where configure found them.
void mkl_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads);
void blis_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads);
void scipy_openblas_matmul(ConstView<float> a, ConstView<float> b, View<float> c, int threads);
std::vector<std::pair<std::string, std::string>> loaded_peer_context();
// Why BLIS would run below its best here: its generic configuration ("" if not).
std::string blis_misconfigured();

}  // namespace locality::bench
