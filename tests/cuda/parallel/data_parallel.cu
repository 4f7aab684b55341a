// Ddp, Zero<1>, Zero<2> and Zero<3> over Nccl with the CUDA backend, at world size 1 on one GPU
// (the data-parallel rung of the correctness ladder on the GPU; tests/mpi/parallel_matches_single
// is the CPU one): 5 AdamW steps of 2 accumulated micro-batches each give Single's losses and
// weights, and the profile of the last step shows communication time (NCCL runs the collectives
// even alone). Ddp both ways: buckets overlapped with the backward, and after it.
//
// The same cases run at W ranks, one process per GPU, under a torchrun-style environment
// (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; the TCP rendezvous hands out the NCCL
// id): each rank trains on its rows of the global batch, and Single on the whole global batch
// on every rank is the reference. Without that environment the process is a job of one.
//
// Tolerance: 2^-9 normwise relative (one bf16 rounding), losses and weights. Alone, Ddp and Zero<1>
// do Single's arithmetic (every collective is a copy, the ÷W is ×1) and match to the bit in
// practice; Zero<2> and Zero<3> sum the squared gradient norm over the packed shard, in another
// order, so the clip factor may differ in its last bits, a master weight may round differently,
// and with it a bf16 weight the GEMMs read: the runs may then differ by bf16 roundings in a few
// places, never by one bf16 rounding of everything. A wrong reduction or gather is off by O(1).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/compare.hpp"
#include "cuda/gpu.hpp"
#include "slm/cuda/attention/flash.cuh"
#include "slm/cuda/attention/naive.cuh"
#include "slm/cuda/backend.cuh"
#include "slm/parallel/ddp.hpp"
#include "slm/parallel/nccl/buckets.cuh"
#include "slm/parallel/nccl/communicator.cuh"
#include "slm/parallel/nccl/shards.cuh"
#include "slm/parallel/transport/rendezvous.hpp"
#include "slm/parallel/zero.hpp"
#include "slm/slm.hpp"
#include "slm/train/trainer.hpp"

// Named, not anonymous: Batches' members are used only through the BatchSource concept, which
// nvcc does not count as a use (warning 177 for an anonymous namespace).
namespace nccl_policies_test {

using slm::parallel::LaunchInfo;
using slm::parallel::Nccl;

constexpr double tolerance = 1.0 / 512;  // 2^-9: one bf16 rounding (see the top of the file)

// A job of one, or this rank of a torchrun-style launch.
Nccl make_nccl() {
    const LaunchInfo info = slm::parallel::from_environment();
    if (info.alone()) return Nccl(info);
    slm::parallel::Rendezvous rendezvous(info);
    return Nccl(info, rendezvous);
}

// Single on this rank's GPU (the trainer builds its backend on the policy's device): the CUDA
// backend does not switch devices per op, so both trainers of a rank must share one.
struct SingleOn : slm::parallel::Single {
    int gpu = 0;
    int device() const { return gpu; }
};

// Synthetic batches: batch index `index` of the global batch is a fixed function of (index, row,
// position), and this reader gets rows [first_row, first_row + batch) of it, so W ranks together
// read exactly what Single reads at W times the micro-batch.
struct Batches {
    struct Batch {
        std::vector<int32_t> tokens, targets;
        int64_t batch, seq;
    };
    int64_t batch, seq, vocab, first_row = 0;
    uint64_t next = 0;

    Batch at(uint64_t index) const {
        Batch b{std::vector<int32_t>(static_cast<size_t>(batch * seq)),
                std::vector<int32_t>(static_cast<size_t>(batch * seq)), batch, seq};
        for (int64_t i = 0; i < batch * seq; ++i) {
            // Mostly a successor rule (something to learn), one token in eight random.
            const uint64_t k = index * 1000003u + static_cast<uint64_t>(first_row * seq + i);
            b.tokens[static_cast<size_t>(i)] = static_cast<int32_t>(slm::splitmix64(k) % vocab);
            b.targets[static_cast<size_t>(i)] = static_cast<int32_t>(
                slm::splitmix64(k + 17) % 8 == 0 ? slm::splitmix64(k + 29) % vocab
                                                 : (b.tokens[static_cast<size_t>(i)] * 37 + 11) % vocab);
        }
        return b;
    }
    Batch next_train() { return at(next++); }
    Batch validation(int64_t i) const { return at(1u << 20 | static_cast<uint64_t>(i)); }
    int64_t validation_batches() const { return 1; }
    uint64_t position() const { return next; }
    void set_position(uint64_t p) { next = p; }
};

slm::ModelConfig small_tied() {
    slm::ModelConfig c;
    c.name = "nccl-policies";
    c.vocab = 512;
    c.hidden = 128;
    c.layers = 2;
    c.heads = 4;
    c.kv_heads = 2;
    c.ffn = 344;
    c.max_seq = 64;
    c.tied_embeddings = true;  // the embedding unit's gradient is reduced twice per micro-batch
    return c;
}

slm::RunConfig run(int64_t batch, int64_t seq) {
    slm::RunConfig r;
    r.batch = batch;
    r.seq = seq;
    r.grad_accum = 2;
    r.steps = 5;
    r.lr = 1e-3;
    r.warmup = 1;
    r.seed = 7;
    // One GEMM algorithm per shape, the same in both trainers: timed choices can differ between
    // them, and their different roundings would move the weights apart by more than the policy
    // under test does.
    r.backend.gemm_candidates = 1;
    return r;
}

double communication_ms(const slm::OpBreakdown& b) {
    return 1e3 * b.seconds[static_cast<size_t>(slm::Op::communication)] /
           static_cast<double>(b.steps);
}

// Trains Policy (this rank's rows) and Single (the global batch) side by side: 4 steps, then 1
// profiled step each.
template <class Model, class Policy>
void matches_single(const slm::ModelConfig& config, const slm::RunConfig& r, Policy policy) {
    CAPTURE(std::string(Policy::name));
    const int rank = policy.rank(), world = policy.world_size(), gpu = policy.device();
    slm::RunConfig global = r;
    global.batch = r.batch * world;
    slm::Trainer<Model, Policy> parallel(config, r, std::move(policy));
    slm::Trainer<Model, SingleOn> single(config, global, SingleOn{{}, gpu});
    Batches parallel_data{r.batch, r.seq, config.vocab, rank * r.batch};
    Batches single_data{global.batch, r.seq, config.vocab, 0};
    double worst_loss = 0;
    for (int s = 0; s < 4; ++s) {
        const double a = parallel.train_step(parallel_data).loss;
        const double b = single.train_step(single_data).loss;
        worst_loss = std::max(worst_loss, std::abs(a - b) / b);
    }
    const slm::OpBreakdown profiled = parallel.profile(parallel_data, 1);
    const slm::OpBreakdown alone = single.profile(single_data, 1);
    const int64_t n = parallel.model().layout().total();
    std::vector<float> p_parallel(static_cast<size_t>(n)), p_single(static_cast<size_t>(n));
    parallel.model().get_parameters(p_parallel.data());
    single.model().get_parameters(p_single.data());
    const double err = slm::test::relative_error(p_parallel, p_single);
    std::printf("rank %d of %d: %s vs single (%s): worst loss difference %.3g, weights %.3g "
                "(allowed %.3g); communication %.3f ms of a %.3f ms step\n",
                rank, world, std::string(Policy::name).c_str(), config.name.c_str(), worst_loss, err,
                tolerance,
                communication_ms(profiled), 1e3 * profiled.step_seconds);
    CHECK(worst_loss < tolerance);
    CHECK(err < tolerance);
    CHECK(communication_ms(profiled) > 0);
    CHECK(communication_ms(alone) == 0);
    CHECK(profiled.table().find("communication") != std::string::npos);
}

template <class Model>
void every_policy(const slm::ModelConfig& config, const slm::RunConfig& r) {
    using namespace slm::parallel;
    // Buckets launched during the backward on the communication stream: 25 MiB, and 64 KiB (a
    // bucket per unit, most of them launched while later units' backward still runs).
    matches_single<Model>(config, r, Ddp<Nccl>(make_nccl()));
    matches_single<Model>(config, r, Ddp<Nccl>(make_nccl(), int64_t{64} << 10));
    // Buckets reduced on the compute stream after the backward.
    matches_single<Model>(config, r, Ddp<Nccl>(make_nccl(), int64_t{64} << 10, false));
    matches_single<Model>(config, r, Zero<1, Nccl>(make_nccl()));
    matches_single<Model>(config, r, Zero<2, Nccl>(make_nccl()));
    matches_single<Model>(config, r, Zero<3, Nccl>(make_nccl()));
}

}  // namespace nccl_policies_test

using nccl_policies_test::every_policy;
using nccl_policies_test::run;
using nccl_policies_test::small_tied;

TEST_CASE("nccl policies: Ddp, Zero<1|2|3> train a small tied model as Single does on the global batch") {
    if (!slm::test::gpu_available()) return;
    every_policy<slm::Llama<slm::cuda::Backend, slm::attention::Naive>>(small_tied(), run(4, 64));
}

TEST_CASE("nccl policies: Ddp, Zero<1|2|3> train llama_100m (seq 256, mb 2) as Single does on the global batch") {
    if (!slm::test::gpu_available()) return;
    every_policy<slm::Llama<slm::cuda::Backend, slm::attention::Flash>>(slm::presets::llama_100m(),
                                                                        run(2, 256));
}
