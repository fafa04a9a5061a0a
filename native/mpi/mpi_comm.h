// MPI collectives for data-parallel training on CPU tensors. Every collective has a deadline: a rank
// that died or hangs turns into an error naming it (then MPI_Abort ends the job), never a silent hang.
#pragma once
#include <string>
#include <vector>

#include "../tensor.h"

namespace pt::dist {

struct RankInfo {
  int rank = 0;
  int size = 1;
  std::string host;
  int pid = 0;
};

// MPI_Init_thread (funneled); idempotent. timeout_s bounds every later collective.
RankInfo init(double timeout_s);
bool initialized();
const std::vector<RankInfo>& ranks();
std::string library_version();

// Sums the tensors over all ranks in place, in buckets of at most kBucketElements: f32 tensors
// where they lie, bf16 ones packed into f32 buckets, so a bf16 gradient is reduced in fp32 and
// rounded once; `extra` (loss sums, flags) is reduced in f64.
constexpr size_t kBucketElements = size_t(1) << 26;  // 256 MB of fp32
// timeout_s: this call's deadline in seconds (0: the job's, from init).
void allreduce_sum(const std::vector<Tensor>& tensors, std::vector<double>& extra, const std::string& label, double timeout_s = 0);
// ZeRO-1: a flat tensor split into contiguous ranges, rank r's of `counts[r]` elements starting
// where rank r-1's ends (the counts sum to the tensor's size). Moved in windows of at most
// kBucketElements, so MPI's int counts never overflow whatever the arena size.
// reduce_scatter_sum: afterwards this rank's range holds the sum over ranks (bf16 summed in fp32
// and rounded once); the rest of the tensor is left as it was.
void reduce_scatter_sum(const Tensor& full, const std::vector<long>& counts, const std::string& label);
// allgather: every rank's range copied to every rank, in place.
void allgather(const Tensor& full, const std::vector<long>& counts, const std::string& label);
// gather: every rank's `shard` (counts[rank] elements) into root's `full`; other ranks pass no full.
void gather(const Tensor& shard, const Tensor* full, const std::vector<long>& counts, int root, const std::string& label, double timeout_s = 0);
// Copies root's tensors to every rank.
void broadcast(const std::vector<Tensor>& tensors, int root, const std::string& label);
void barrier(const std::string& label, double timeout_s = 0);
// Ends the whole job at once (every rank exits with `code`).
[[noreturn]] void abort_job(int code, const std::string& why);
void finalize();

}  // namespace pt::dist
