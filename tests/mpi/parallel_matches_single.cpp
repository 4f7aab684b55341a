// Ddp, Zero<1>, Zero<2> and Zero<3> over Mpi with real processes (ctest starts it with
// mpirun -np 2 and -np 4) against Single in one process on the concatenated global batch: same
// losses, same weights after 5 AdamW steps of 2 accumulated micro-batches each, and every rank's
// weights identical to the bit. In fp64 (tolerance 1e-12: only the order of the sums over ranks
// differs) and fp32 (1e-5). The fp64 model ties its embeddings, so both ways the LM head's
// gradient reaches the embedding unit are covered. Exit status 0 on every rank when all holds.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/compare.hpp"
#include "common/temp_dir.hpp"
#include "slm/data/loader.hpp"
#include "slm/parallel/ddp.hpp"
#include "slm/parallel/transport/mpi.hpp"
#include "slm/parallel/zero.hpp"
#include "slm/slm.hpp"
#include "slm/train/trainer.hpp"

namespace {

template <class T>
using Model = slm::Llama<slm::cpu::Backend<T>, slm::attention::Flash>;

// Relative error allowed on losses and weights: fp64 differs from Single only by the order of
// the sums across ranks; fp32 rounding is amplified a little by 5 AdamW steps.
template <class T>
constexpr double tolerance = sizeof(T) == 8 ? 1e-12 : 1e-5;

slm::ModelConfig small(bool tied) {
    slm::ModelConfig c;
    c.name = "ddp-test";
    c.vocab = 64;
    c.hidden = 32;
    c.layers = 2;
    c.heads = 2;
    c.kv_heads = 1;
    c.ffn = 64;
    c.max_seq = 32;
    c.tied_embeddings = tied;
    return c;
}

slm::RunConfig run(const std::filesystem::path& out, int64_t batch) {
    slm::RunConfig r;
    r.batch = batch;
    r.seq = 16;
    r.grad_accum = 2;
    r.steps = 5;
    r.lr = 3e-3;
    r.warmup = 1;
    r.out_dir = out;
    r.seed = 7;
    return r;
}

std::string sci(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", x);
    return buf;
}

}  // namespace

// Trains `Policy` over the ranks and Single on the concatenated batch; returns the failures.
template <class T, class Policy>
int compare(Policy policy, const std::vector<std::filesystem::path>& shards,
            const std::filesystem::path& out, const slm::parallel::Mpi& comm) {
    const int rank = comm.rank(), world = comm.world_size();
    int failures = 0;
    const std::string label = std::string(Policy::name) + (sizeof(T) == 8 ? " fp64" : " fp32");
    auto check = [&](bool ok, const std::string& what) {
        std::printf("rank %d: %s: %s: %s\n", rank, label.c_str(), ok ? "ok" : "FAILED", what.c_str());
        failures += !ok;
    };
    const bool tied = sizeof(T) == 8;
    const int64_t per_rank = 2;
    const std::string dir(Policy::name);
    slm::Trainer<Model<T>, Policy> parallel(small(tied), run(out / dir, per_rank), std::move(policy));
    slm::data::Loader parallel_data(shards, {per_rank, 16, 7, rank, world});
    slm::Trainer<Model<T>> single(small(tied), run(out / (dir + "-single"), per_rank * world));
    slm::data::Loader single_data(shards, {per_rank * world, 16, 7, 0, 1});

    double worst_loss = 0;
    for (int s = 0; s < 5; ++s) {
        const double a = parallel.train_step(parallel_data).loss;
        const double b = single.train_step(single_data).loss;
        worst_loss = std::max(worst_loss, std::abs(a - b) / b);
        if (rank == 0) std::printf("%s step %d loss %.12f single %.12f\n", label.c_str(), s + 1, a, b);
    }
    check(worst_loss < tolerance<T>, "losses equal Single's (worst relative difference " +
                                         sci(worst_loss) + ", allowed " + sci(tolerance<T>) + ")");
    const int64_t n = parallel.model().layout().total();
    std::vector<T> p_parallel(n), p_single(n);
    parallel.model().get_parameters(p_parallel.data());  // collective under Zero<3>
    single.model().get_parameters(p_single.data());
    const double err = slm::test::relative_error(p_parallel, p_single);
    check(err < tolerance<T>, "weights after 5 steps equal Single's (relative error " + sci(err) +
                                  ", allowed " + sci(tolerance<T>) + ")");
    std::vector<T> p_rank0 = p_parallel;
    comm.broadcast(p_rank0.data(), n, 0);
    check(p_rank0 == p_parallel, "weights identical to rank 0's, bit for bit");
    return failures;
}

template <class T>
int compare_all(const std::vector<std::filesystem::path>& shards, const std::filesystem::path& out,
                const slm::parallel::Mpi& comm) {
    using slm::parallel::Mpi;
    return compare<T>(slm::parallel::Ddp<Mpi>(comm), shards, out, comm) +
           compare<T>(slm::parallel::Zero<1, Mpi>(comm), shards, out, comm) +
           compare<T>(slm::parallel::Zero<2, Mpi>(comm), shards, out, comm) +
           compare<T>(slm::parallel::Zero<3, Mpi>(comm), shards, out, comm);
}

// argv[1]: the number of ranks mpirun was asked for, so a launch that went wrong cannot pass.
int main(int argc, char** argv) {
    slm::parallel::Mpi comm;
    const int rank = comm.rank();
    const int expected = argc > 1 ? std::atoi(argv[1]) : 2;
    int failures = comm.world_size() == expected ? 0 : 1;
    if (failures) std::printf("rank %d: FAILED: %d ranks, expected %d\n", rank, comm.world_size(), expected);
    try {
        slm::test::TempDir dir("parallel-rank" + std::to_string(rank));
        std::vector<int32_t> tokens(20000);
        for (size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = static_cast<int32_t>((i * 7 + (i / 13) * 3) % 64);
        slm::data::write_shard(dir.path / "tokens.bin", tokens, 64);
        const std::vector<std::filesystem::path> shards{dir.path / "tokens.bin"};
        failures += compare_all<double>(shards, dir.path, comm);
        failures += compare_all<float>(shards, dir.path, comm);
    } catch (const slm::Error& e) {
        std::printf("rank %d: FAILED with error: %s\n", rank, e.what());
        failures += 1;
    }
    return failures == 0 ? 0 : 1;
}
