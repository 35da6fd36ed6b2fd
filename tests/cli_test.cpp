// The command-line tools as a user meets them: bad input gets one line on
// stderr naming the problem and exit code 2; good input runs and verifies.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "locality/gpu.hpp"

namespace {

struct Outcome {
  int exit_code;
  std::string output;  // stdout and stderr together
};

Outcome run(const std::string& binary, const std::string& args) {
  const std::string command = "'" + binary + "' " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string output;
  std::array<char, 4096> buf{};
  while (const std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe))
    output.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

void expect_usage_error(const std::string& binary, const std::string& args,
                        const std::string& message) {
  const Outcome o = run(binary, args);
  EXPECT_EQ(o.exit_code, 2) << args << "\n" << o.output;
  EXPECT_NE(o.output.find(message), std::string::npos) << args << "\n" << o.output;
  // One line: the message and its newline, nothing else.
  EXPECT_EQ(o.output.find('\n'), o.output.size() - 1) << args << "\n" << o.output;
}

const std::string kCli = LOCALITY_CLI;
const std::string kBench = LOCALITY_BENCH;

TEST(LocalityCli, ListNamesEveryRung) {
  const Outcome o = run(kCli, "list");
  EXPECT_EQ(o.exit_code, 0);
  for (const char* name : {"naive", "reordered", "tiled", "register_blocked", "packed", "parallel",
                           "flash", "parallel_flash"}) {
    EXPECT_NE(o.output.find(name), std::string::npos) << name;
  }
  EXPECT_NE(o.output.find("attention"), std::string::npos);
}

TEST(LocalityCli, RunAttentionVerifiesAgainstEigen) {
  const Outcome o = run(kCli,
                        "run attention parallel_flash --batch 2 --heads 3 --seq-q 37 --seq-kv 211 "
                        "--head-dim 80 --causal --threads 2 --repeat 2");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("verify: ok"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("workspace="), std::string::npos) << o.output;
}

TEST(LocalityCli, AttentionBadInput) {
  expect_usage_error(kCli, "run attention flash --seq 0", "--seq: the value must be between 1 and");
  expect_usage_error(kCli, "run attention flash --seq-kv -3",
                     "--seq-kv: the value must be between 1 and");
  expect_usage_error(kCli, "run attention flash --head-dim 257",
                     "--head-dim: the value must be between 1");
  expect_usage_error(kCli, "run attention flash --heads many",
                     "--heads: the value must be a whole number");
  expect_usage_error(kCli, "run attention flash --scale inf",
                     "--scale: the value must be a finite number");
  expect_usage_error(kCli, "run attention flash --heads 1000000 --seq 1000000", "needs");
  expect_usage_error(kCli, "run attention flashy", "unknown variant 'flashy'");
  expect_usage_error(kCli, "run attention flash --device tpu", "--device: tpu not in {cpu,gpu}");
  expect_usage_error(kCli, "run attention", "variant is required");
  // Sizes whose byte counts overflow, refused before anything is allocated.
  expect_usage_error(kCli,
                     "run attention naive --batch 1048576 --heads 1048576 --seq 8192 "
                     "--head-dim 256",
                     "overflow");
  expect_usage_error(kCli, "run attention naive --batch 1048576 --heads 1048576 --seq 1048576",
                     "too large for the address space");
}

TEST(LocalityCli, RunVerifiesAgainstEigen) {
  const Outcome o = run(kCli, "run matmul parallel --m 37 --n 41 --k 300 --threads 2 --repeat 3");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("verify: ok"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("GFLOP/s"), std::string::npos) << o.output;
}

TEST(LocalityCli, RunOnceWithoutReference) {
  const Outcome o = run(kCli, "run matmul naive --size 16 --no-verify");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("verify: skipped"), std::string::npos) << o.output;
}

TEST(LocalityCli, RepeatZeroBuildsInputsOnly) {
  const Outcome o = run(kCli, "run attention flash --seq 64 --head-dim 16 --repeat 0");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("setup only"), std::string::npos) << o.output;
  EXPECT_EQ(o.output.find("GFLOP/s"), std::string::npos) << o.output;
  expect_usage_error(kCli, "run matmul packed --repeat -1",
                     "--repeat: the value must be between 0 and");
}

TEST(LocalityCli, SizeZeroNegativeOrNotANumber) {
  expect_usage_error(kCli, "run matmul packed --size 0", "--size: the value must be between 1 and");
  expect_usage_error(kCli, "run matmul packed --m -5", "--m: the value must be between 1 and");
  expect_usage_error(kCli, "run matmul packed --n abc",
                     "--n: the value must be a whole number, got 'abc'");
  expect_usage_error(kCli, "run matmul packed --k 12x", "--k: the value must be a whole number");
  expect_usage_error(kCli, "run matmul packed --size 99999999999999999999999",
                     "--size: the value must be between 1 and");
}

TEST(LocalityCli, SizeTooLargeForMemory) {
  expect_usage_error(kCli, "run matmul packed --size 1000000", "needs");
}

TEST(LocalityCli, UnknownVariantFamilyFlagOrDevice) {
  expect_usage_error(kCli, "run matmul fastest", "unknown variant 'fastest'");
  expect_usage_error(kCli, "run convolution packed", "unknown family 'convolution'");
  expect_usage_error(kCli, "run matmul packed --fast", "not expected: --fast");
  expect_usage_error(kCli, "run matmul packed --size", "--size: 1 required");
  expect_usage_error(kCli, "run matmul packed --device tpu", "--device: tpu not in {cpu,gpu}");
  expect_usage_error(kCli, "frobnicate", "unknown command 'frobnicate'");
}

TEST(LocalityCli, GpuDeviceWithoutAGpuExitsTwo) {
  if (locality::gpu::matmul_variants().empty()) {  // a build without CUDA says so
    expect_usage_error(kCli, "run matmul packed --device gpu", "this build has no CUDA");
  } else {
    expect_usage_error(kCli, "run matmul packed --device gpu", "unknown GPU variant 'packed'");
  }
  if (locality::gpu::bf16_matmul_variants().empty()) {
    expect_usage_error(kCli, "run matmul_bf16 wmma --size 64", "this build has no CUDA");
  } else {
    expect_usage_error(kCli, "run matmul_bf16 packed", "unknown variant 'packed'");
    expect_usage_error(kCli, "run matmul_bf16 mma_sync --size 60", "needs k and n multiples of 8");
    expect_usage_error(kCli, "run matmul_bf16 wmma --device cpu", "--device: cpu not in {gpu}");
  }
  if (locality::gpu::attention_variants().empty()) {
    expect_usage_error(kCli, "run attention flash --device gpu", "this build has no CUDA");
  } else {
    expect_usage_error(kCli, "run attention parallel_flash --device gpu",
                       "unknown GPU variant 'parallel_flash'");
    expect_usage_error(kCli, "run attention flash --device gpu --scale 2",
                       "--scale is not offered there");
  }
  if (locality::gpu::bf16_attention_variants().empty()) {
    expect_usage_error(kCli, "run attention_bf16 flash2_mma", "this build has no CUDA");
  } else {
    expect_usage_error(kCli, "run attention_bf16 flash2", "unknown variant 'flash2'");
    expect_usage_error(kCli, "run attention_bf16 flash2_mma --head-dim 96",
                       "takes --head-dim 64 or 128");
    expect_usage_error(kCli, "run attention_bf16 flash2_mma --scale 2",
                       "--scale is not offered there");
    expect_usage_error(kCli, "run attention_bf16 flash2_mma --device cpu",
                       "--device: cpu not in {gpu}");
  }
  const locality::gpu::DeviceStatus status = locality::gpu::query_device();
  if (status.available) GTEST_SKIP() << "a GPU is present: " << status.name;
  expect_usage_error(kCli, "run attention_bf16 flash2_mma --seq 64", "no usable CUDA device");
  expect_usage_error(kCli, "run matmul warp_tiled --size 64 --device gpu", "no usable CUDA device");
  expect_usage_error(kCli, "run attention flash2 --seq 64 --device gpu", "no usable CUDA device");
  expect_usage_error(kCli, "run matmul_bf16 wmma --size 64", "no usable CUDA device");
  expect_usage_error(kBench, "--locality_family=gpu",
                     "--locality_family=gpu: no usable CUDA device");
}

// Issue 21: user text echoed into a message once broke it across lines.
TEST(LocalityCli, ArgumentsHoldingNewlinesStillGiveOneLine) {
  expect_usage_error(kCli, "run matmul naive --size \"$(printf '64\\nX')\"",
                     "--size: the value must be a whole number, got '64\\nX'");
  expect_usage_error(kCli, "run matmul \"$(printf 'na\\nive')\"", "unknown variant 'na\\nive'");
  expect_usage_error(kCli, "run matmul naive \"$(printf -- '--si\\nze')\" 64",
                     "not expected: 64 --si\\nze");
  expect_usage_error(kCli, "\"$(printf 'r\\tun')\"", "unknown command 'r\\x09un'");
  expect_usage_error(kBench, "\"$(printf -- '--locality_sizes=64\\nX')\"",
                     "must be a whole number, got '64\\nX'");
  expect_usage_error(kBench, "\"$(printf -- '--locality_x\\ny')\"",
                     "unknown flag '--locality_x\\ny'");
  expect_usage_error(kBench, "\"$(printf 'stray\\nargument')\"",
                     "unknown argument 'stray\\nargument'");
}

// No arguments: the usage goes to stdout, and stderr holds one line, exit 2.
TEST(LocalityCli, NoArgumentsPrintUsageAndOneErrorLine) {
  const Outcome out = run(kCli, "2>/dev/null");
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_NE(out.output.find("Usage: locality [OPTIONS] [SUBCOMMAND]"), std::string::npos)
      << out.output;
  const Outcome err = run(kCli, "2>&1 >/dev/null #");
  EXPECT_EQ(err.exit_code, 2);
  EXPECT_EQ(err.output, "locality: no command given (the usage is above)\n");
}

TEST(LocalityCli, HelpAtEveryLevelIsTheUsage) {
  const std::pair<const char*, const char*> cases[] = {
      {"--help", "Usage: locality [OPTIONS] [SUBCOMMAND]"},
      {"-h", "Usage: locality [OPTIONS] [SUBCOMMAND]"},
      {"run --help", "Usage: locality run [OPTIONS] [SUBCOMMAND]"},
      {"run matmul --help", "Usage: locality run matmul [OPTIONS] variant"},
      {"run attention flash --seq 8 --help", "Usage: locality run attention [OPTIONS] variant"}};
  for (const auto& [args, usage] : cases) {
    const Outcome o = run(kCli, args);
    EXPECT_EQ(o.exit_code, 0) << args << "\n" << o.output;
    EXPECT_NE(o.output.find(usage), std::string::npos) << args << "\n" << o.output;
  }
}

// Issue 21: the last of two flags for one setting won without a word.
TEST(LocalityCli, ConflictingOrRepeatedFlagsAreRefused) {
  // (CLI11's words: "excludes" for two flags of one setting, "at most 1" for a repeat.)
  expect_usage_error(kCli, "run attention flash --seq-q 5 --seq 7", "--seq excludes --seq-q");
  expect_usage_error(kCli, "run attention flash --seq 7 --seq-kv 5", "--seq excludes --seq-kv");
  expect_usage_error(kCli, "run matmul naive --size 64 --m 32", "--size excludes --m");
  expect_usage_error(kCli, "run matmul naive --k 3 --size 64", "--size excludes --k");
  expect_usage_error(kCli, "run matmul naive --size 64 --size 32",
                     "--size: At Most 1 required but received 2");
  expect_usage_error(kCli, "run attention flash --causal --causal",
                     "--causal: At Most 1 required but received 2");
  expect_usage_error(kCli, "run matmul naive --threads 1 --threads 2",
                     "--threads: At Most 1 required but received 2");
  const Outcome ok = run(kCli, "run attention flash --seq-q 5 --seq-kv 7 --head-dim 8");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

TEST(LocalityCli, ThreadCountsOutOfRange) {
  expect_usage_error(kCli, "run matmul parallel --threads 0",
                     "--threads: the value must be between 1 and");
  expect_usage_error(kCli, "run matmul parallel --threads 100000",
                     "--threads: the value must be between");
}

TEST(LocalityBench, BadOwnFlags) {
  expect_usage_error(kBench, "--locality_sizes=0", "--locality_sizes entry must be between");
  expect_usage_error(kBench, "--locality_sizes=64,abc", "must be a whole number, got 'abc'");
  expect_usage_error(kBench, "--locality_threads=0", "--locality_threads entry must be between");
  expect_usage_error(kBench, "--locality_sweep=huge", "--locality_sweep must be");
  expect_usage_error(kBench, "--locality_colour=red", "unknown flag '--locality_colour=red'");
  expect_usage_error(kBench, "--locality_sizes=1000000", "needs");
  expect_usage_error(kBench, "--locality_family=conv", "--locality_family must be 'all', 'matmul'");
  expect_usage_error(kBench, "--locality_seqs=-1", "--locality_seqs entry must be between");
  expect_usage_error(kBench, "--locality_head_dims=0", "--locality_head_dims entry must be");
  expect_usage_error(kBench, "--locality_family=attention --locality_seqs=1000000", "needs");
  expect_usage_error(kBench, "--locality_threads=100000", "--locality_threads entry must be");
  expect_usage_error(kBench, "--locality_sizes=", "must be a whole number, got ''");
  expect_usage_error(kBench, "--locality_seqs=64,,128", "must be a whole number, got ''");
  expect_usage_error(kBench, "--locality_seed=-1", "--locality_seed must be between");
  expect_usage_error(kBench, "--locality_seed=soon", "must be a whole number, got 'soon'");
  expect_usage_error(kBench, "--locality_fused_peers=onnxruntime,mlas",
                     "--locality_fused_peers takes onnxruntime and torch, got 'mlas'");
  expect_usage_error(kBench, "--locality_fused_peers=", "--locality_fused_peers is empty");
  expect_usage_error(kBench, "--locality_fused_min_time=0",
                     "--locality_fused_min_time must be seconds in (0, 60], got '0'");
  expect_usage_error(kBench, "--locality_pairs=-1", "--locality_pairs must be between");
  expect_usage_error(kBench, "--locality_pairs=1001", "--locality_pairs must be between");
  expect_usage_error(kBench, "--locality_fused_min_time=1s",
                     "--locality_fused_min_time must be a finite number, got '1s'");
  expect_usage_error(kBench, "--locality_fused_min_time=61",
                     "--locality_fused_min_time must be seconds in (0, 60], got '61'");
}

// The matmul benchmarks in the order they run: problem by problem (a size
// and a team), each problem's variants together, in an order the seed draws.
std::vector<std::string> matmul_order(const std::string& seed) {
  const Outcome o = run(kBench,
                        "--locality_family=matmul --locality_sizes=48,64 --locality_threads=1,2 "
                        "--benchmark_list_tests=true --locality_seed=" +
                            seed);
  EXPECT_EQ(o.exit_code, 0) << o.output;
  std::vector<std::string> names;
  std::istringstream lines(o.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("cpu/matmul/", 0) == 0) names.push_back(line);
  }
  return names;
}

TEST(LocalityBench, RunsEachProblemsVariantsTogetherInASeededOrder) {
  const std::vector<std::string> first = matmul_order("1");
  ASSERT_GT(first.size(), 8u);
  // The problem of a name: what follows the variant, "48x48x48/omp_threads:1/...".
  const auto problem = [](const std::string& name) {
    return name.substr(name.find('/', std::string("cpu/matmul/").size()) + 1);
  };
  std::vector<std::string> problems;
  for (const std::string& name : first) {
    if (problems.empty() || problems.back() != problem(name)) {
      EXPECT_EQ(std::find(problems.begin(), problems.end(), problem(name)), problems.end())
          << problem(name) << " comes back after another problem";
      problems.push_back(problem(name));
    }
  }
  EXPECT_EQ(problems.size(), 4u);  // 2 sizes x 2 teams
  EXPECT_EQ(matmul_order("1"), first);
  const std::vector<std::string> second = matmul_order("2");
  EXPECT_NE(second, first);
  EXPECT_TRUE(std::is_permutation(second.begin(), second.end(), first.begin(), first.end()));
}

TEST(LocalityBench, RunsAndChecksASmallAttentionSweep) {
  const Outcome o = run(kBench,
                        "--locality_family=attention --locality_seqs=96 --locality_head_dims=24 "
                        "--locality_threads=2 --benchmark_min_time=0.01");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  for (const char* name : {"cpu/attention/naive/1x441x96x96x24/causal:0/omp_threads:2",
                           "cpu/attention/parallel_flash/1x441x96x96x24/causal:1/omp_threads:2",
                           "cpu/attention/eigen/1x441x96x96x24/causal:1/omp_threads:2"}) {
    EXPECT_NE(o.output.find(name), std::string::npos) << name << "\n" << o.output;
  }
  EXPECT_EQ(o.output.find("cpu/matmul/"), std::string::npos) << o.output;
}

// The call-by-call comparison: a row per BLAS peer, with the rounds' median,
// lowest and highest ratio, none for the rungs.
TEST(LocalityBench, PairsTimeTheTopRungAgainstEachPeerCallByCall) {
  const Outcome o = run(kBench,
                        "--locality_family=matmul --locality_sizes=48 --locality_threads=1 "
                        "--locality_pairs=3 --benchmark_filter=cpu/pairs/");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  const std::string row =
      "cpu/pairs/matmul/parallel_vs_eigen/48x48x48/omp_threads:1/iterations:1/manual_time";
  const std::size_t at = o.output.find(row);
  ASSERT_NE(at, std::string::npos) << o.output;
  const std::string line = o.output.substr(at, o.output.find('\n', at) - at);
  for (const char* counter : {"pairs=3", "ratio=", "ratio_high=", "ratio_low="}) {
    EXPECT_NE(line.find(counter), std::string::npos) << counter << "\n" << line;
  }
  EXPECT_EQ(o.output.find("parallel_vs_packed"), std::string::npos) << o.output;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fused peers through their helper's protocol (bench/fused_peers.py's
// docstring), with a stand-in helper: a shell script that loads
// "onnxruntime", answers 2 ms a call over 7 calls on problems without the
// mask and a wrong result on those with it. Its answers become the peer's
// rows (one iteration of manual time, the calls, the error, the kernel path
// as the label); the wrong result an error row; the run still succeeds.
TEST(LocalityBench, FusedPeersAnswerThroughTheirHelper) {
  const std::filesystem::path dir = testing::TempDir();
  const std::string helper = (dir / "fake_fused_peers.sh").string();
  {
    std::ofstream script(helper);
    script << "#!/bin/sh\n"
              "printf 'context\\tonnxruntime\\tstand-in helper\\n'\n"
              "printf 'ready\\tonnxruntime\\n'\n"
              "while IFS= read -r line; do\n"
              "  set -- $line\n"
              "  if [ \"$8\" = 1 ]; then printf 'error\\twrong result: 2 of the bound\\n';\n"
              "  else printf 'ok\\t0.002\\t7\\t0.25\\tSTAND_IN_PATH\\n'; fi\n"
              "done\n";
  }
  std::filesystem::permissions(helper, std::filesystem::perms::owner_all);
  const std::string out = (dir / "fused_peers.json").string();
  const Outcome o = run(kBench,
                        "--locality_family=attention --locality_seqs=96 --locality_head_dims=24 "
                        "--locality_threads=1 --locality_fused_peers=onnxruntime "
                        "--locality_python='" +
                            helper +
                            "' --locality_fused_min_time=0.01 "
                            "--benchmark_filter='cpu/attention/(onnxruntime|parallel_flash)/' "
                            "--benchmark_min_time=0.01 --benchmark_out='" +
                            out + "'");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("a peer failed"), std::string::npos) << o.output;
  const std::string json = read_file(out);
  EXPECT_NE(json.find("\"onnxruntime\": \"stand-in helper\""), std::string::npos) << json;
  const std::string row =
      "\"name\": \"cpu/attention/onnxruntime/1x441x96x96x24/causal:0/omp_threads:1/"
      "iterations:1/manual_time\"";
  const std::size_t at = json.find(row);
  ASSERT_NE(at, std::string::npos) << json;
  const std::string rest = json.substr(at, json.find('}', at) - at);
  const auto number = [&rest](const std::string& field) {
    const std::size_t where = rest.find("\"" + field + "\": ");
    return where == std::string::npos
               ? -1.0
               : std::strtod(rest.c_str() + where + field.size() + 4, nullptr);
  };
  EXPECT_DOUBLE_EQ(number("real_time"), 2.0) << rest;  // milliseconds, a call's mean
  EXPECT_DOUBLE_EQ(number("calls"), 7.0) << rest;
  EXPECT_DOUBLE_EQ(number("max_error_over_bound"), 0.25) << rest;
  EXPECT_NE(rest.find("\"label\": \"STAND_IN_PATH\""), std::string::npos) << rest;
  const std::size_t wrong = json.find(
      "cpu/attention/onnxruntime/1x441x96x96x24/causal:1/omp_threads:1/iterations:1/manual_time");
  ASSERT_NE(wrong, std::string::npos) << json;
  EXPECT_NE(json.find("wrong result: 2 of the bound", wrong), std::string::npos) << json;
  EXPECT_NE(json.find("cpu/attention/parallel_flash/1x441x96x96x24/causal:1"), std::string::npos);
}

// A helper that cannot start leaves the fused peers out, says why in the
// context, and the rungs run as ever.
TEST(LocalityBench, AFusedPeersHelperThatCannotStartIsLeftOut) {
  const std::string out = (std::filesystem::path(testing::TempDir()) / "no_helper.json").string();
  const Outcome o = run(kBench,
                        "--locality_family=attention --locality_seqs=96 --locality_head_dims=24 "
                        "--locality_threads=1 --locality_fused_peers=onnxruntime "
                        "--locality_python=/nonexistent/python "
                        "--benchmark_filter=cpu/attention/parallel_flash/ "
                        "--benchmark_min_time=0.01 --benchmark_out='" +
                            out + "'");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  const std::string json = read_file(out);
  EXPECT_NE(json.find("\"fused_peers_left_out\": \"cannot start /nonexistent/python"),
            std::string::npos)
      << json;
  EXPECT_EQ(json.find("cpu/attention/onnxruntime/"), std::string::npos) << json;
  EXPECT_NE(json.find("cpu/attention/parallel_flash/1x441x96x96x24/causal:0"), std::string::npos);
}

// A peer on kernels below the CPU's is left out, with the reason, and the run
// goes on: Debian's OpenBLAS told to run its SSE3 Prescott kernels (it names
// its cores with capitals; the check once compared them in lower case only).
TEST(LocalityBench, AMisconfiguredPeerIsLeftOutAndTheRunGoesOn) {
  if (!__builtin_cpu_supports("avx2")) {
    GTEST_SKIP() << "a CPU without AVX2 runs Prescott kernels at its best";
  }
  const Outcome o = run("env", "OPENBLAS_CORETYPE=Prescott '" + kBench +
                                   "' --locality_sizes=48 --locality_threads=1 "
                                   "--benchmark_filter=cpu/matmul/ --benchmark_min_time=0.01");
  if (o.output.find("openblas_corename") == std::string::npos) {
    GTEST_SKIP() << "this build has no Debian OpenBLAS peer";
  }
  EXPECT_EQ(o.exit_code, 0) << o.output;
  EXPECT_NE(o.output.find("peer openblas left out: OpenBLAS runs its Prescott kernels"),
            std::string::npos)
      << o.output;
  EXPECT_EQ(o.output.find("cpu/matmul/openblas/"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("cpu/matmul/eigen/48x48x48"), std::string::npos) << o.output;
}

TEST(LocalityBench, RunsAndChecksASmallSweep) {
  const Outcome o = run(kBench,
                        "--locality_sizes=48 --locality_threads=1 "
                        "--benchmark_filter=cpu/matmul/ --benchmark_min_time=0.01");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  for (const char* name :
       {"cpu/matmul/naive/48x48x48/omp_threads:1", "cpu/matmul/parallel/48x48x48/omp_threads:1",
        "cpu/matmul/eigen/48x48x48/omp_threads:1"}) {
    EXPECT_NE(o.output.find(name), std::string::npos) << name << "\n" << o.output;
  }
}

}  // namespace
