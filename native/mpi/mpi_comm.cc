#include "mpi_comm.h"

#include <dlfcn.h>
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "../common.h"

namespace pt::dist {
namespace {

bool g_init = false;
double g_timeout = 600;
long g_seq = 0;  // collectives issued so far: the same count on every rank of a healthy job
std::vector<RankInfo> g_ranks;
RankInfo g_me;
constexpr int kArriveTag = 7301;
constexpr int kGoTag = 7302;

std::string mpi_error(int rc) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, buf, &len);
  return std::string(buf, len);
}

void check(int rc, const std::string& what) {
  if (rc != MPI_SUCCESS) throw std::runtime_error("rank " + std::to_string(g_me.rank) + ": " + what + ": " + mpi_error(rc));
}

std::string who(int r) {
  const RankInfo& i = g_ranks.at(r);
  return "rank " + std::to_string(r) + " (pid " + std::to_string(i.pid) + " on " + i.host + ")";
}

// Every collective starts with a timed arrival handshake: each rank tells rank 0 it is here (one
// integer, the collective's sequence number) and waits for rank 0's go, which comes once all have
// arrived. Waiting here polls with sleeps (a rank waiting for rank 0's validation leaves the cores
// alone), and on the deadline rank 0 can name the ranks that never came. The collective itself is
// then MPI's blocking one (its tuned algorithms are several times faster than the non-blocking
// ones progressed by polling), watched by a thread that ends the process if it outlives the deadline.
void arrive(const std::string& label, long seq, double timeout) {
  std::vector<MPI_Request> reqs;
  std::vector<long> seen(g_me.size, -1);
  long mine = seq;
  long go = -1;
  if (g_me.rank == 0) {
    reqs.resize(g_me.size - 1);
    for (int r = 1; r < g_me.size; r++) check(MPI_Irecv(&seen[r], 1, MPI_LONG, r, kArriveTag, MPI_COMM_WORLD, &reqs[r - 1]), "arrival notice");
  } else {
    reqs.resize(2);
    check(MPI_Isend(&mine, 1, MPI_LONG, 0, kArriveTag, MPI_COMM_WORLD, &reqs[0]), "arrival notice");
    check(MPI_Irecv(&go, 1, MPI_LONG, 0, kGoTag, MPI_COMM_WORLD, &reqs[1]), "go from rank 0");
  }
  const auto start = std::chrono::steady_clock::now();
  int spins = 0;
  for (;;) {
    int done = 0;
    check(MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE), label);
    if (done) break;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > timeout) {
      std::string msg = label + " (collective #" + std::to_string(seq) + ") did not start within " + std::to_string(long(timeout)) + " s";
      if (g_me.rank == 0) {
        std::string missing;
        for (int r = 1; r < g_me.size; r++) {
          if (seen[r] == seq) continue;
          missing += (missing.empty() ? "" : ", ") + who(r) + (seen[r] < 0 ? " never arrived" : " is at collective #" + std::to_string(seen[r]));
        }
        msg += ": " + missing + " (dead or hung)";
      } else {
        msg += ": rank 0 did not give the go (rank 0 names the ranks that did not arrive, unless it is the one that is gone)";
      }
      abort_job(3, msg);
    }
    // Spin briefly for the fast case, then sleep so waiting ranks leave the cores to the late one.
    if (++spins > 200) std::this_thread::sleep_for(std::chrono::microseconds(spins > 2000 ? 1000 : 20));
  }
  if (g_me.rank == 0) {
    for (int r = 1; r < g_me.size; r++) {
      if (seen[r] != seq) abort_job(3, label + " (collective #" + std::to_string(seq) + "): " + who(r) + " is at collective #" + std::to_string(seen[r]) + ": the ranks disagree on what to do next");
    }
    std::vector<MPI_Request> gos(g_me.size - 1);
    for (int r = 1; r < g_me.size; r++) check(MPI_Isend(&mine, 1, MPI_LONG, r, kGoTag, MPI_COMM_WORLD, &gos[r - 1]), "go to the ranks");
    check(MPI_Waitall(int(gos.size()), gos.data(), MPI_STATUSES_IGNORE), "go to the ranks");
  }
}

// Ends the process if the collective it guards outlives the deadline (every rank had arrived, so
// this is a rank stopped or a transport stuck mid-collective). Only _exit is safe from this thread
// under MPI_THREAD_FUNNELED; mpirun then ends the other ranks.
class Watch {
 public:
  Watch(const std::string& label, long seq, double timeout) {
    std::lock_guard<std::mutex> l(mu());
    active() = true;
    what() = label + " (collective #" + std::to_string(seq) + ")";
    deadline() = std::chrono::steady_clock::now() + std::chrono::milliseconds(long(timeout * 1000));
    limit() = timeout;
    cv().notify_all();
  }
  ~Watch() {
    std::lock_guard<std::mutex> l(mu());
    active() = false;
    cv().notify_all();
  }
  static void start_thread() {
    std::thread([] {
      std::unique_lock<std::mutex> l(mu());
      for (;;) {
        if (!active()) {
          cv().wait(l);
          continue;
        }
        if (cv().wait_until(l, deadline()) == std::cv_status::timeout && active() && std::chrono::steady_clock::now() >= deadline()) {
          std::fprintf(stderr, "polytune dist: rank %d of %d (pid %d on %s): %s: every rank arrived but it did not complete within %ld s (a rank stopped or the network is stuck); exiting\n",
                       g_me.rank, g_me.size, g_me.pid, g_me.host.c_str(), what().c_str(), long(limit()));
          std::fflush(stderr);
          std::_Exit(3);
        }
      }
    }).detach();
  }

 private:
  // Never destroyed: at exit the watch thread still waits on them, and glibc's destructor of a
  // condition variable with a waiter blocks (the process would never end).
  static std::mutex& mu() { static auto* m = new std::mutex; return *m; }
  static std::condition_variable& cv() { static auto* c = new std::condition_variable; return *c; }
  static bool& active() { static auto* a = new bool(false); return *a; }
  static std::string& what() { static auto* w = new std::string; return *w; }
  static std::chrono::steady_clock::time_point& deadline() { static auto* d = new std::chrono::steady_clock::time_point; return *d; }
  static double& limit() { static auto* t = new double(0); return *t; }
};

// Runs one blocking collective after the arrival handshake, under the watch.
// The deadline: the job's, unless the call asks for its own (0: the job's; capped so the clock
// arithmetic cannot overflow).
double deadline_of(double timeout_s) { return timeout_s > 0 ? std::min(timeout_s, 1e7) : g_timeout; }

template <class F>
void collective(const std::string& label, double timeout_s, F&& f) {
  const long seq = ++g_seq;
  const double t = deadline_of(timeout_s);
  arrive(label, seq, t);
  Watch w(label, seq, t);
  check(f(), label);
}

void require_init(const char* op) {
  if (!g_init) throw std::runtime_error(std::string("dist.") + op + ": MPI is not initialised (call init first)");
}

}  // namespace

RankInfo init(double timeout_s) {
  // Clamped: a huge or infinite value would overflow the deadline's clock arithmetic into the past.
  if (timeout_s > 0) g_timeout = std::min(timeout_s, 1e7);
  if (g_init) return g_me;
  // Node loads the addon with RTLD_LOCAL; Open MPI's plugins (dlopened by libmpi) need libmpi's
  // symbols global, or MPI_Init fails with "undefined symbol" in mca_*.
  for (const char* lib : {"libmpi.so.40", "libmpi.so.12", "libmpi.so"}) {
    if (dlopen(lib, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) || dlopen(lib, RTLD_NOW | RTLD_GLOBAL)) break;
  }
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int provided = 0;
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) throw std::runtime_error("MPI_Init_thread failed: " + mpi_error(rc));
  }
  // Errors come back as codes (turned into JS errors naming the rank) instead of MPI's default abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_me.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_me.size);
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  g_me.host = host;
  g_me.pid = int(getpid());
  std::vector<char> hosts(size_t(g_me.size) * 256);
  std::vector<int> pids(g_me.size);
  check(MPI_Allgather(host, 256, MPI_CHAR, hosts.data(), 256, MPI_CHAR, MPI_COMM_WORLD), "init: gathering host names");
  check(MPI_Allgather(&g_me.pid, 1, MPI_INT, pids.data(), 1, MPI_INT, MPI_COMM_WORLD), "init: gathering pids");
  g_ranks.resize(g_me.size);
  for (int r = 0; r < g_me.size; r++) g_ranks[r] = {r, g_me.size, std::string(&hosts[size_t(r) * 256]), pids[r]};
  g_init = true;
  Watch::start_thread();
  return g_me;
}

bool initialized() { return g_init; }
const std::vector<RankInfo>& ranks() { return g_ranks; }

std::string library_version() {
  char buf[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(buf, &len);
  std::string s(buf, len);
  auto nl = s.find_first_of("\n,");
  return nl == std::string::npos ? s : s.substr(0, nl);
}

void allreduce_sum(const std::vector<Tensor>& tensors, std::vector<double>& extra, const std::string& label, double timeout_s) {
  require_init("allreduceSum");
  // f32 tensors (an f32 model's gradient arenas) are reduced where they lie; bf16 ones go through
  // f32 buckets, so they are summed in fp32 and rounded once.
  size_t total = 0;
  for (const Tensor& t : tensors) total += t.dtype == DType::F32 ? 0 : size_t(t.numel());
  std::vector<float> buf(std::min(total, kBucketElements));
  // Walks the bf16 tensors as one concatenated array: [lo, hi) of it, packed into buf or unpacked from it.
  auto each_piece = [&](size_t lo, size_t hi, auto&& fn) {
    size_t base = 0;
    for (const Tensor& t : tensors) {
      if (t.dtype == DType::F32) continue;
      const size_t k = size_t(t.numel());
      const size_t a = std::max(lo, base), b = std::min(hi, base + k);
      if (a < b) fn(static_cast<bf16*>(t.data()) + (a - base), b - a, &buf[a - lo]);
      base += k;
    }
  };
  collective(label, timeout_s, [&] {
    for (const Tensor& t : tensors) {
      if (t.dtype != DType::F32) continue;
      float* p = static_cast<float*>(t.data());
      const size_t n = size_t(t.numel());
      for (size_t lo = 0; lo < n; lo += kBucketElements) {
        const int rc = MPI_Allreduce(MPI_IN_PLACE, p + lo, int(std::min(n - lo, kBucketElements)), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
      }
    }
    for (size_t lo = 0; lo < total; lo += kBucketElements) {
      const size_t hi = std::min(total, lo + kBucketElements);
      each_piece(lo, hi, [](const bf16* p, size_t n, float* dst) {
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(p[i]);
      });
      const int rc = MPI_Allreduce(MPI_IN_PLACE, buf.data(), int(hi - lo), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) return rc;
      each_piece(lo, hi, [](bf16* p, size_t n, const float* src) {
        for (size_t i = 0; i < n; i++) p[i] = f32_to_bf16(src[i]);
      });
    }
    return extra.empty() ? MPI_SUCCESS : MPI_Allreduce(MPI_IN_PLACE, extra.data(), int(extra.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  });
}

namespace {

// The ranges of `counts` clipped to the window [lo, hi): per-rank counts and offsets from lo.
struct Window {
  std::vector<int> counts, displs;
};
Window clip(const std::vector<long>& counts, size_t lo, size_t hi) {
  Window w;
  size_t base = 0;
  for (long c : counts) {
    const size_t a = std::max(lo, base), b = std::min(hi, base + size_t(c));
    w.counts.push_back(a < b ? int(b - a) : 0);
    w.displs.push_back(a < b ? int(a - lo) : 0);
    base += size_t(c);
  }
  return w;
}

void check_counts(const Tensor& full, const std::vector<long>& counts, const char* op) {
  if (int(counts.size()) != g_me.size) throw std::runtime_error(std::string("dist.") + op + ": " + std::to_string(counts.size()) + " counts for " + std::to_string(g_me.size) + " ranks");
  size_t total = 0;
  for (long c : counts) {
    if (c < 0) throw std::runtime_error(std::string("dist.") + op + ": a negative count");
    total += size_t(c);
  }
  if (total != size_t(full.numel())) throw std::runtime_error(std::string("dist.") + op + ": the counts sum to " + std::to_string(total) + ", the tensor has " + std::to_string(full.numel()) + " elements");
}

size_t offset_of(const std::vector<long>& counts, int r) {
  size_t o = 0;
  for (int i = 0; i < r; i++) o += size_t(counts[i]);
  return o;
}

// The ZeRO collectives' window: kBucketElements, or POLYTUNE_DIST_WINDOW elements (read once) so
// the tests can cross window edges with a few elements instead of 2^26 of them.
size_t window_elements() {
  static const size_t w = [] {
    const char* v = std::getenv("POLYTUNE_DIST_WINDOW");
    const long n = v ? std::atol(v) : 0;
    return n > 0 ? size_t(n) : kBucketElements;
  }();
  return w;
}

// Elements move as raw 2- or 4-byte words: allgather and gather copy, they never compute.
MPI_Datatype word_type(const Tensor& t) { return dtype_size(t.dtype) == 2 ? MPI_UINT16_T : MPI_UINT32_T; }

}  // namespace

void reduce_scatter_sum(const Tensor& full, const std::vector<long>& counts, const std::string& label) {
  require_init("reduceScatterSum");
  check_counts(full, counts, "reduceScatterSum");
  const size_t n = size_t(full.numel());
  const bool f32 = full.dtype == DType::F32;
  std::vector<float> send(f32 ? 0 : std::min(n, window_elements()));
  std::vector<float> recv(std::min(size_t(counts[g_me.rank]), window_elements()) + 1);
  collective(label, 0, [&] {
    for (size_t lo = 0; lo < n; lo += window_elements()) {
      const size_t hi = std::min(n, lo + window_elements());
      const Window w = clip(counts, lo, hi);
      const float* src;
      if (f32) {
        src = static_cast<const float*>(full.data()) + lo;
      } else {
        const bf16* p = static_cast<const bf16*>(full.data()) + lo;
        for (size_t i = 0; i < hi - lo; i++) send[i] = bf16_to_f32(p[i]);
        src = send.data();
      }
      const int rc = MPI_Reduce_scatter(src, recv.data(), w.counts.data(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) return rc;
      const int k = w.counts[g_me.rank];
      if (k == 0) continue;
      const size_t at = lo + size_t(w.displs[g_me.rank]);
      if (f32) std::memcpy(static_cast<float*>(full.data()) + at, recv.data(), size_t(k) * sizeof(float));
      else {
        bf16* p = static_cast<bf16*>(full.data()) + at;
        for (int i = 0; i < k; i++) p[i] = f32_to_bf16(recv[i]);
      }
    }
    return MPI_SUCCESS;
  });
}

void allgather(const Tensor& full, const std::vector<long>& counts, const std::string& label) {
  require_init("allgather");
  check_counts(full, counts, "allgather");
  const size_t n = size_t(full.numel());
  const size_t es = dtype_size(full.dtype);
  if (es != 2 && es != 4) throw std::runtime_error("dist.allgather: takes f32 or bf16 tensors");
  collective(label, 0, [&] {
    for (size_t lo = 0; lo < n; lo += window_elements()) {
      const size_t hi = std::min(n, lo + window_elements());
      const Window w = clip(counts, lo, hi);
      const int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, static_cast<char*>(full.data()) + lo * es, w.counts.data(), w.displs.data(), word_type(full), MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
  });
}

void gather(const Tensor& shard, const Tensor* full, const std::vector<long>& counts, int root, const std::string& label, double timeout_s) {
  require_init("gather");
  if (int(counts.size()) != g_me.size) throw std::runtime_error("dist.gather: " + std::to_string(counts.size()) + " counts for " + std::to_string(g_me.size) + " ranks");
  if (long(shard.numel()) != counts[g_me.rank]) throw std::runtime_error("dist.gather: this rank's shard has " + std::to_string(shard.numel()) + " elements, its count is " + std::to_string(counts[g_me.rank]));
  if (g_me.rank == root) {
    if (!full) throw std::runtime_error("dist.gather: the root needs the full tensor");
    check_counts(*full, counts, "gather");
    if (full->dtype != shard.dtype) throw std::runtime_error("dist.gather: the shard and the full tensor differ in dtype");
  }
  const size_t es = dtype_size(shard.dtype);
  if (es != 2 && es != 4) throw std::runtime_error("dist.gather: takes f32 or bf16 tensors");
  size_t n = 0;
  for (long c : counts) n += size_t(c);
  const size_t mine = offset_of(counts, g_me.rank);
  collective(label, timeout_s, [&] {
    for (size_t lo = 0; lo < n; lo += window_elements()) {
      const size_t hi = std::min(n, lo + window_elements());
      const Window w = clip(counts, lo, hi);
      const int k = w.counts[g_me.rank];
      const char* send = static_cast<const char*>(shard.data()) + (lo + size_t(w.displs[g_me.rank]) - mine) * es;
      char* recv = g_me.rank == root ? static_cast<char*>(full->data()) + lo * es : nullptr;
      const int rc = MPI_Gatherv(k ? send : static_cast<const char*>(shard.data()), k, word_type(shard), recv, w.counts.data(), w.displs.data(), word_type(shard), root, MPI_COMM_WORLD);
      if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
  });
}

void broadcast(const std::vector<Tensor>& tensors, int root, const std::string& label) {
  require_init("broadcast");
  collective(label, 0, [&] {
    for (const Tensor& t : tensors) {
      // In pieces: MPI counts are ints.
      for (size_t off = 0; off < t.nbytes(); off += size_t(1) << 30) {
        const size_t n = std::min(t.nbytes() - off, size_t(1) << 30);
        int rc = MPI_Bcast(static_cast<char*>(t.data()) + off, int(n), MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
      }
    }
    return MPI_SUCCESS;
  });
}

void barrier(const std::string& label, double timeout_s) {
  require_init("barrier");
  // The arrival handshake is itself a barrier: every rank arrived before any gets the go.
  const long seq = ++g_seq;
  arrive(label, seq, deadline_of(timeout_s));
}

void abort_job(int code, const std::string& why) {
  std::fprintf(stderr, "polytune dist: rank %d of %d (pid %d on %s): %s; aborting the job\n", g_me.rank, g_me.size, g_me.pid, g_me.host.c_str(), why.c_str());
  std::fflush(stderr);
  if (g_init) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void finalize() {
  if (!g_init) return;
  g_init = false;
  MPI_Finalize();
}

}  // namespace pt::dist
