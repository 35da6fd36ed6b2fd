#include "fused_peers.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <sstream>

extern char** environ;

namespace locality::bench {
namespace {

// The longest the helper may take to answer: loading the peers, or one
// request (at most 60 s of calls, plus the first shape's check).
constexpr int kAnswerTimeoutMs = 600'000;

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) {
    fields.push_back(line.substr(start, tab - start));
  }
  fields.push_back(line.substr(start));
  return fields;
}

bool parse_double(const std::string& text, double& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() && errno == 0;
}

}  // namespace

FusedPeers::FusedPeers(const std::string& python, const std::string& script,
                       const std::vector<std::string>& peers) {
  // A helper that dies must not take locality_bench with it: a write to its
  // closed pipe fails with EPIPE instead of raising SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) {
    fail(std::string("pipe: ") + std::strerror(errno));
    return;
  }
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    fail(std::string("pipe: ") + std::strerror(errno));
    return;
  }
  std::vector<std::string> args{python, script, "--serve"};
  for (const std::string& p : peers) args.insert(args.end(), {"--peer", p});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  const int status = posix_spawnp(&pid_, python.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  if (status != 0) {
    pid_ = -1;
    close(in[1]);
    close(out[0]);
    fail("cannot start " + python + ": " + std::strerror(status));
    return;
  }
  from_ = out[0];
  to_ = fdopen(in[1], "w");
  if (!to_) {
    fail(std::string("fdopen: ") + std::strerror(errno));
    return;
  }
  for (std::string line; read_line(line);) {
    const std::vector<std::string> f = split_tabs(line);
    if (f[0] == "context" && f.size() == 3) {
      context_[f[1]] = f[2];
    } else if (f[0] == "ready") {
      ready_.assign(f.begin() + 1, f.end());
      return;
    } else {
      fail("the helper said '" + line.substr(0, 200) + "'");
      return;
    }
  }
}

FusedPeers::~FusedPeers() {
  if (to_) std::fclose(to_);  // end of input: the helper exits
  if (from_ >= 0) close(from_);
  if (pid_ > 0) {
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

void FusedPeers::fail(const std::string& why) {
  if (failed_.empty()) failed_ = why;
  ready_.clear();
  context_["fused_peers_left_out"] = failed_;
  if (pid_ > 0) kill(pid_, SIGKILL);  // whatever state it is in, it is done
}

// One line from the helper, without its newline; false (and the helper
// failed) at its end, on an error, or after kAnswerTimeoutMs without one.
bool FusedPeers::read_line(std::string& line) {
  if (!failed_.empty() || from_ < 0) return false;
  line.clear();
  const int fd = from_;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, kAnswerTimeoutMs);
    if (ready == 0) {
      fail("no answer from the helper in " + std::to_string(kAnswerTimeoutMs / 1000) + " s");
      return false;
    }
    if (ready < 0 && errno == EINTR) continue;
    char c;
    const ssize_t got = ready < 0 ? -1 : read(fd, &c, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      fail(got == 0 ? "the helper exited (its errors are above)"
                    : std::string("reading from the helper: ") + std::strerror(errno));
      return false;
    }
    if (c == '\n') return true;
    line.push_back(c);
  }
}

FusedTiming FusedPeers::time(const std::string& peer, const AttentionShape& s, bool causal,
                             int threads, double min_time) {
  FusedTiming t;
  if (!failed_.empty()) {
    t.error = "the fused peers' helper failed: " + failed_;
    return t;
  }
  std::ostringstream request;
  request << "time\t" << peer << '\t' << s.batch << '\t' << s.heads << '\t' << s.seq_q << '\t'
          << s.seq_kv << '\t' << s.head_dim << '\t' << (causal ? 1 : 0) << '\t' << threads << '\t'
          << min_time << '\n';
  const std::string text = request.str();
  if (std::fwrite(text.data(), 1, text.size(), to_) != text.size() || std::fflush(to_) != 0) {
    fail(std::string("writing to the helper: ") + std::strerror(errno));
    t.error = "the fused peers' helper failed: " + failed_;
    return t;
  }
  std::string line;
  if (!read_line(line)) {
    t.error = "the fused peers' helper failed: " + failed_;
    return t;
  }
  const std::vector<std::string> f = split_tabs(line);
  double calls = 0;
  if (f[0] == "error" && f.size() == 2) {
    t.error = f[1];
  } else if (f[0] == "ok" && f.size() == 5 && parse_double(f[1], t.seconds) &&
             parse_double(f[2], calls) && parse_double(f[3], t.max_error_over_bound) &&
             t.seconds > 0 && calls >= 1) {
    t.calls = static_cast<long>(calls);
    t.label = f[4];
  } else {
    fail("the helper answered '" + line.substr(0, 200) + "'");
    t.error = "the fused peers' helper failed: " + failed_;
  }
  return t;
}

}  // namespace locality::bench
