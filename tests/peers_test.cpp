// The screen every BLAS peer passes before it is timed (bench/peers.cpp):
// a peer that crashes, hangs or answers wrongly is reported and left out,
// and the process that screens it goes on.
#include "peers.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace locality::bench {
namespace {

void right(ConstView<float> a, ConstView<float> b, View<float> c, int /*threads*/) {
  for (std::ptrdiff_t i = 0; i < c.rows(); ++i) {
    for (std::ptrdiff_t j = 0; j < c.cols(); ++j) {
      double sum = 0.0;
      for (std::ptrdiff_t p = 0; p < a.cols(); ++p) sum += double{a(i, p)} * double{b(p, j)};
      c(i, j) = static_cast<float>(sum);
    }
  }
}

// Right everywhere but one element of the larger products.
void one_wrong(ConstView<float> a, ConstView<float> b, View<float> c, int threads) {
  right(a, b, c, threads);
  if (c.rows() > 100) c(c.rows() - 1, c.cols() - 1) += 1.0f;
}

// abort(), not a segmentation fault: the sanitizers' own handler would turn
// a SIGSEGV into an exit with a status, and the test would see a wrong answer.
void crashes(ConstView<float>, ConstView<float>, View<float>, int) { std::abort(); }

void hangs(ConstView<float>, ConstView<float>, View<float>, int) {
  for (;;) pause();
}

TEST(PeerScreen, ARightPeerPasses) { EXPECT_EQ(screen_peer({"right", right}), ""); }

TEST(PeerScreen, AWrongAnswerIsCaught) {
  EXPECT_EQ(screen_peer({"one_wrong", one_wrong}),
            "a wrong answer against Eigen on the screening shapes");
}

TEST(PeerScreen, ACrashIsContained) {
  const std::string why = screen_peer({"crashes", crashes});
  EXPECT_EQ(why.rfind("crashed: ", 0), 0u) << why;
  EXPECT_NE(why.find("Abort"), std::string::npos) << why;
}

TEST(PeerScreen, AHangIsCutOff) {
  EXPECT_EQ(screen_peer({"hangs", hangs}, 1), "no answer within 1 s");
}

}  // namespace
}  // namespace locality::bench
