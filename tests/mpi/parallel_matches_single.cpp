// Ddp, Zero<1> and Zero<2> over Mpi with real processes (ctest starts it with mpirun -np 2)
// against Single in one process
// on the concatenated global batch: same losses, same weights after 5 AdamW steps, and the ranks'
// weights identical to the bit. Exit status 0 on every rank when all holds.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/compare.hpp"
#include "common/temp_dir.hpp"
#include "slm/data/loader.hpp"
#include "slm/parallel/ddp.hpp"
#include "slm/parallel/mpi.hpp"
#include "slm/parallel/zero.hpp"
#include "slm/slm.hpp"
#include "slm/train/trainer.hpp"

namespace {

using Model = slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash>;

slm::ModelConfig small() {
    slm::ModelConfig c;
    c.name = "ddp-test";
    c.vocab = 64;
    c.hidden = 32;
    c.layers = 2;
    c.heads = 2;
    c.kv_heads = 1;
    c.ffn = 64;
    c.max_seq = 32;
    return c;
}

slm::RunConfig run(const std::filesystem::path& out, int64_t batch) {
    slm::RunConfig r;
    r.batch = batch;
    r.seq = 16;
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
template <class Policy>
int compare(Policy policy, const std::vector<std::filesystem::path>& shards,
            const std::filesystem::path& out, const slm::parallel::Mpi& comm) {
    const int rank = comm.rank(), world = comm.world_size();
    int failures = 0;
    const std::string label(Policy::name);
    auto check = [&](bool ok, const std::string& what) {
        std::printf("rank %d: %s: %s: %s\n", rank, label.c_str(), ok ? "ok" : "FAILED", what.c_str());
        failures += !ok;
    };
    const int64_t per_rank = 4;
    slm::Trainer<Model, Policy> parallel(small(), run(out / label, per_rank), std::move(policy));
    slm::data::Loader parallel_data(shards, {per_rank, 16, 7, rank, world});
    slm::Trainer<Model> single(small(), run(out / (label + "-single"), per_rank * world));
    slm::data::Loader single_data(shards, {per_rank * world, 16, 7, 0, 1});

    double worst_loss = 0;
    for (int s = 0; s < 5; ++s) {
        const double a = parallel.train_step(parallel_data).loss;
        const double b = single.train_step(single_data).loss;
        worst_loss = std::max(worst_loss, std::abs(a - b) / b);
        if (rank == 0) std::printf("%s step %d loss %.7f single %.7f\n", label.c_str(), s + 1, a, b);
    }
    check(worst_loss < 1e-5, "losses equal Single's within 1e-5 (worst " + sci(worst_loss) + ")");
    const int64_t n = parallel.model().layout().total();
    std::vector<float> p_parallel(n), p_single(n);
    parallel.model().get_parameters(p_parallel.data());
    single.model().get_parameters(p_single.data());
    const double err = slm::test::relative_error(p_parallel, p_single);
    check(err < 1e-5, "weights after 5 steps equal Single's (relative error " + sci(err) + ")");
    std::vector<float> p_rank0 = p_parallel;
    comm.broadcast(p_rank0.data(), n, 0);
    check(p_rank0 == p_parallel, "weights identical to rank 0's, bit for bit");
    return failures;
}

int main() {
    slm::parallel::Mpi comm;
    const int rank = comm.rank();
    int failures = comm.world_size() == 2 ? 0 : 1;
    if (failures) std::printf("rank %d: FAILED: needs 2 ranks (mpirun -np 2)\n", rank);
    try {
        slm::test::TempDir dir("parallel-rank" + std::to_string(rank));
        std::vector<int32_t> tokens(20000);
        for (size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = static_cast<int32_t>((i * 7 + (i / 13) * 3) % 64);
        slm::data::write_shard(dir.path / "tokens.bin", tokens, 64);
        const std::vector<std::filesystem::path> shards{dir.path / "tokens.bin"};
        using slm::parallel::Mpi;
        failures += compare(slm::parallel::Ddp<Mpi>(comm), shards, dir.path, comm);
        failures += compare(slm::parallel::Zero<1, Mpi>(comm), shards, dir.path, comm);
        failures += compare(slm::parallel::Zero<2, Mpi>(comm), shards, dir.path, comm);
    } catch (const slm::Error& e) {
        std::printf("rank %d: FAILED with error: %s\n", rank, e.what());
        failures += 1;
    }
    return failures == 0 ? 0 : 1;
}
