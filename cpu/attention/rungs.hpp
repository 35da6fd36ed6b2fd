// The attention rungs (one file each under cpu/attention/) and the workspace
// each declares; registry.cpp lists them.
#pragma once

#include <cstddef>
#include <span>

#include "locality/attention.hpp"

namespace locality::cpu {

void naive_attention(const AttentionArgs& args, std::span<float> workspace, int threads);
std::size_t naive_attention_workspace(const AttentionShape& shape, int threads);

void reordered_attention(const AttentionArgs& args, std::span<float> workspace, int threads);
std::size_t reordered_attention_workspace(const AttentionShape& shape, int threads);

void tiled_attention(const AttentionArgs& args, std::span<float> workspace, int threads);
std::size_t tiled_attention_workspace(const AttentionShape& shape, int threads);

void flash_attention(const AttentionArgs& args, std::span<float> workspace, int threads);
std::size_t flash_attention_workspace(const AttentionShape& shape, int threads);

void parallel_flash_attention(const AttentionArgs& args, std::span<float> workspace, int threads);
std::size_t parallel_flash_attention_workspace(const AttentionShape& shape, int threads);

}  // namespace locality::cpu
