// Shared-memory bank conflicts of ldmatrix, counted by the emulation's
// ldmatrix (ptx.cuh here), so that a rung whose header says "every ldmatrix
// is free of bank conflicts" is held to it before any GPU has run it.
//
// The model, from the CUDA programming guide and the PTX ISA: shared memory
// has 32 banks of 4 bytes, byte address a in bank (a / 4) mod 32. ldmatrix
// reads each of its 8 x 8 matrices of 16-bit values as 8 rows of 16 bytes
// at 16-byte aligned addresses, so a row covers 4 whole banks, those of
// bank group (a / 16) mod 8. A matrix whose rows lie in 8 different groups
// is read in one pass (wavefront); rows at different addresses in the same
// group conflict, and the group with the most of them sets the passes (a
// row given twice is read once). What it does not model: anything of the
// hardware's beyond that rule, or conflicts of other shared loads and stores.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace locality::emu {

// Passes one ldmatrix matrix takes, from its rows' shared-memory offsets.
inline int ldmatrix_wavefronts(const std::uint64_t (&rows)[8]) {
  int in_group[8] = {};
  for (int i = 0; i < 8; ++i) {
    if (std::find(rows, rows + i, rows[i]) == rows + i) ++in_group[(rows[i] / 16) % 8];
  }
  return *std::max_element(in_group, in_group + 8);
}

// What the ldmatrix loads since the last reset took: as many passes as
// matrices when none conflicted.
struct LdmatrixCount {
  std::atomic<std::uint64_t> matrices{0}, wavefronts{0};
  void reset() {
    matrices = 0;
    wavefronts = 0;
  }
};
inline LdmatrixCount ldmatrix_count;

}  // namespace locality::emu
