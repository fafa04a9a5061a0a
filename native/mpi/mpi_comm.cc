#include "mpi_comm.h"

#include <dlfcn.h>
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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

// Waits for `reqs` with the deadline. Before the collective every rank told rank 0 it arrived
// (one int each), so on a timeout rank 0 can name the ranks that never came.
void timed_wait(std::vector<MPI_Request>& reqs, const std::string& label) {
  const long seq = ++g_seq;
  std::vector<MPI_Request> arrive;
  std::vector<long> seen(g_me.size, -1);
  long mine = seq;
  if (g_me.rank == 0) {
    arrive.resize(g_me.size - 1);
    for (int r = 1; r < g_me.size; r++) check(MPI_Irecv(&seen[r], 1, MPI_LONG, r, kArriveTag, MPI_COMM_WORLD, &arrive[r - 1]), "arrival notice");
  } else {
    arrive.resize(1);
    check(MPI_Isend(&mine, 1, MPI_LONG, 0, kArriveTag, MPI_COMM_WORLD, &arrive[0]), "arrival notice");
  }
  std::vector<MPI_Request> all = reqs;
  all.insert(all.end(), arrive.begin(), arrive.end());
  const auto start = std::chrono::steady_clock::now();
  int spins = 0;
  for (;;) {
    int done = 0;
    check(MPI_Testall(int(all.size()), all.data(), &done, MPI_STATUSES_IGNORE), label);
    if (done) break;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > g_timeout) {
      std::string msg = label + " (collective #" + std::to_string(seq) + ") did not complete within " + std::to_string(int(g_timeout)) + " s";
      if (g_me.rank == 0) {
        std::string missing;
        for (int r = 1; r < g_me.size; r++) {
          if (seen[r] == seq) continue;
          missing += (missing.empty() ? "" : ", ") + who(r) + (seen[r] < 0 ? " never arrived" : " is at collective #" + std::to_string(seen[r]));
        }
        msg += missing.empty() ? ": every rank arrived; the transport itself is stuck" : ": " + missing + " (dead or hung)";
      } else {
        msg += "; rank 0 names the ranks that did not arrive" ;
      }
      abort_job(3, msg);
    }
    // Spin briefly for the fast case, then sleep so waiting ranks leave the cores to the late one.
    if (++spins > 200) std::this_thread::sleep_for(std::chrono::microseconds(spins > 2000 ? 1000 : 50));
  }
  // The Testall above completed `all`; copy the (now null) handles back.
  for (size_t i = 0; i < reqs.size(); i++) reqs[i] = all[i];
}

void require_init(const char* op) {
  if (!g_init) throw std::runtime_error(std::string("dist.") + op + ": MPI is not initialised (call init first)");
}

}  // namespace

RankInfo init(double timeout_s) {
  if (timeout_s > 0) g_timeout = timeout_s;
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

void allreduce_sum(const std::vector<Tensor>& tensors, std::vector<double>& extra, const std::string& label) {
  require_init("allreduceSum");
  size_t n = 0;
  for (const Tensor& t : tensors) n += size_t(t.numel());
  std::vector<float> buf(n);
  size_t off = 0;
  for (const Tensor& t : tensors) {
    const int64_t k = t.numel();
    if (t.dtype == DType::F32) {
      std::memcpy(&buf[off], t.data(), size_t(k) * 4);
    } else {
      const bf16* p = static_cast<const bf16*>(t.data());
      for (int64_t i = 0; i < k; i++) buf[off + i] = bf16_to_f32(p[i]);
    }
    off += size_t(k);
  }
  std::vector<MPI_Request> reqs(2, MPI_REQUEST_NULL);
  if (n) check(MPI_Iallreduce(MPI_IN_PLACE, buf.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &reqs[0]), label);
  if (!extra.empty()) check(MPI_Iallreduce(MPI_IN_PLACE, extra.data(), int(extra.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &reqs[1]), label);
  timed_wait(reqs, label);
  off = 0;
  for (const Tensor& t : tensors) {
    const int64_t k = t.numel();
    if (t.dtype == DType::F32) {
      std::memcpy(t.data(), &buf[off], size_t(k) * 4);
    } else {
      bf16* p = static_cast<bf16*>(t.data());
      for (int64_t i = 0; i < k; i++) p[i] = f32_to_bf16(buf[off + i]);
    }
    off += size_t(k);
  }
}

void broadcast(const std::vector<Tensor>& tensors, int root, const std::string& label) {
  require_init("broadcast");
  std::vector<MPI_Request> reqs(tensors.size(), MPI_REQUEST_NULL);
  for (size_t i = 0; i < tensors.size(); i++) {
    check(MPI_Ibcast(tensors[i].data(), int(tensors[i].nbytes()), MPI_BYTE, root, MPI_COMM_WORLD, &reqs[i]), label);
  }
  timed_wait(reqs, label);
}

void barrier(const std::string& label) {
  require_init("barrier");
  std::vector<MPI_Request> reqs(1, MPI_REQUEST_NULL);
  check(MPI_Ibarrier(MPI_COMM_WORLD, &reqs[0]), label);
  timed_wait(reqs, label);
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
