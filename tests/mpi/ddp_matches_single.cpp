// Ddp<Mpi> over real processes (ctest starts it with mpirun -np 2) against Single in one process
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

int main() {
    slm::parallel::Mpi comm;
    const int rank = comm.rank(), world = comm.world_size();
    int failures = 0;
    auto check = [&](bool ok, const std::string& what) {
        std::printf("rank %d: %s: %s\n", rank, ok ? "ok" : "FAILED", what.c_str());
        failures += !ok;
    };
    try {
        slm::test::TempDir dir("ddp-rank" + std::to_string(rank));
        std::vector<int32_t> tokens(20000);
        for (size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = static_cast<int32_t>((i * 7 + (i / 13) * 3) % 64);
        slm::data::write_shard(dir.path / "tokens.bin", tokens, 64);
        const std::vector<std::filesystem::path> shards{dir.path / "tokens.bin"};
        const int64_t per_rank = 4;

        slm::Trainer<Model, slm::parallel::Ddp<slm::parallel::Mpi>> ddp(
            small(), run(dir.path / "ddp", per_rank), slm::parallel::Ddp<slm::parallel::Mpi>(comm));
        slm::data::Loader ddp_data(shards, {per_rank, 16, 7, rank, world});
        slm::Trainer<Model> single(small(), run(dir.path / "single", per_rank * world));
        slm::data::Loader single_data(shards, {per_rank * world, 16, 7, 0, 1});

        double worst_loss = 0;
        for (int s = 0; s < 5; ++s) {
            const double a = ddp.train_step(ddp_data).loss, b = single.train_step(single_data).loss;
            worst_loss = std::max(worst_loss, std::abs(a - b) / b);
            std::printf("rank %d: step %d loss ddp %.7f single %.7f\n", rank, s + 1, a, b);
        }
        check(worst_loss < 1e-5, "losses equal Single's within 1e-5 (worst " +
                                     sci(worst_loss) + ")");

        const int64_t n = ddp.model().layout().total();
        std::vector<float> p_ddp(n), p_single(n), p_rank0(n);
        ddp.model().get_parameters(p_ddp.data());
        single.model().get_parameters(p_single.data());
        const double err = slm::test::relative_error(p_ddp, p_single);
        check(err < 1e-5, "weights after 5 steps equal Single's (relative error " +
                              sci(err) + ")");
        p_rank0 = p_ddp;
        comm.broadcast(p_rank0.data(), n, 0);
        check(p_rank0 == p_ddp, "weights identical to rank 0's, bit for bit");
        check(world == 2, "ran with 2 ranks (got " + std::to_string(world) + ")");
    } catch (const slm::Error& e) {
        std::printf("rank %d: FAILED with error: %s\n", rank, e.what());
        failures += 1;
    }
    return failures == 0 ? 0 : 1;
}
