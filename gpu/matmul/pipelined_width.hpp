// Rung 6's (6_pipelined.cu) choice of block width: host arithmetic, kept in
// a header of its own so that it is compiled, and tested, without CUDA.
#pragma once

namespace locality::gpu {

// Rows of C per block of the pipelined rung; its blocks are 256 or 128 wide.
inline constexpr int kPipelinedRows = 128;

// The width the pipelined rung takes for an m x n product on a device with
// `sms` multiprocessors: the one whose busiest SM has the least work (in
// columns of 128-row tiles, blocks dealt out evenly: a 128 x 256 block is one
// SM's whole load, two 128 x 128 blocks share one), 256 on a tie.
constexpr int pipelined_tile_width(int m, int n, int sms) {
  const auto blocks = [](int extent, int size) { return (extent + size - 1) / size; };
  const auto busiest = [&](int width) {
    return blocks(blocks(m, kPipelinedRows) * blocks(n, width), sms) * width;
  };
  return busiest(256) <= busiest(128) ? 256 : 128;
}

}  // namespace locality::gpu
