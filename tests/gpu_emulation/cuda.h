// The driver API's tensor map as the emulation needs it: what the host side
// of a Hopper rung describes (hopper.cuh here fills it), which the emulated
// copy engine reads. Nothing else of the driver API is emulated.
#pragma once

struct CUtensorMap {
  const void* base = nullptr;  // `planes` row-major rows x cols bf16 matrices
  long long planes = 1;
  int rows = 0, cols = 0;
  int box_rows = 0, box_cols = 0;  // one copy's box; 128-byte swizzle
};
