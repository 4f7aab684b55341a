// Checkpoints under ZeRO resume at another world size and under another policy (fp64).
//
//   save   (mpirun -np 4): Zero<1>, Zero<2> and Zero<3> each train 3 steps and save
//          zero<k>-step3.bin (shards gathered to rank 0), then train on to step 4 without stopping
//          and save zero<k>-step4.bin. Rank 0 also trains Single on the same global batch and
//          checks each step-3 file holds Single's weights and AdamW moments (same format).
//   resume (mpirun -np 2, after save): each step-3 file is resumed by Ddp, Zero<1>, Zero<2> and
//          Zero<3>; one more step must give the weights of the 4-rank run that never stopped
//          (its step-4 file) and of Single trained 4 steps, within 1e-12.
//
// argv: save|resume DIR expected-ranks. The global batch is 8 rows at both world sizes.
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

namespace fs = std::filesystem;
using Model = slm::Llama<slm::cpu::Backend<double>, slm::attention::Flash>;
using slm::parallel::Mpi;
constexpr double tolerance = 1e-12;  // fp64: only the order of sums across ranks differs
constexpr int64_t global_batch = 8, cut = 3, steps = 4;

slm::ModelConfig small() {
    slm::ModelConfig c;
    c.name = "zero-checkpoint-test";
    c.vocab = 64;
    c.hidden = 32;
    c.layers = 3;
    c.heads = 2;
    c.kv_heads = 1;
    c.ffn = 64;
    c.max_seq = 32;
    return c;
}

slm::RunConfig run(const fs::path& out, int64_t batch) {
    slm::RunConfig r;
    r.batch = batch;
    r.seq = 16;
    r.steps = steps;
    r.lr = 3e-3;
    r.warmup = 1;
    r.out_dir = out;
    r.seed = 11;
    return r;
}

std::string sci(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", x);
    return buf;
}

struct Checker {
    int rank;
    int failures = 0;
    void operator()(bool ok, const std::string& what) {
        std::printf("rank %d: %s: %s\n", rank, ok ? "ok" : "FAILED", what.c_str());
        failures += !ok;
    }
};

std::string file_of(int stage, int64_t step) {
    return "zero" + std::to_string(stage) + "-step" + std::to_string(step) + ".bin";
}

// Single on the global batch for `count` steps; its weights (and the trainer, for saving).
std::vector<double> train_single(const std::vector<fs::path>& shards, const fs::path& out,
                                 int64_t count, const fs::path& save_as = {}) {
    slm::Trainer<Model> single(small(), run(out, global_batch));
    slm::data::Loader data(shards, {global_batch, 16, 7, 0, 1});
    for (int64_t s = 0; s < count; ++s) single.train_step(data);
    if (!save_as.empty()) single.save_checkpoint(save_as, data.position());
    std::vector<double> p(single.model().layout().total());
    single.model().get_parameters(p.data());
    return p;
}

template <class Policy>
void save_run(int stage, const std::vector<fs::path>& shards, const fs::path& dir,
              const Mpi& comm) {
    const int64_t per_rank = global_batch / comm.world_size();
    slm::Trainer<Model, Policy> t(small(), run(dir / "out", per_rank), Policy(comm));
    slm::data::Loader data(shards, {per_rank, 16, 7, comm.rank(), comm.world_size()});
    while (t.step() < steps) {
        t.train_step(data);
        if (t.step() == cut || t.step() == steps)
            t.save_checkpoint(dir / file_of(stage, t.step()), data.position());
    }
}

// Rank 0: the file written under Zero<stage> holds what Single's file holds.
void check_same_as_single(int stage, const fs::path& dir, Checker& check) {
    const auto a = slm::load_checkpoint<double>(dir / file_of(stage, cut));
    const auto b = slm::load_checkpoint<double>(dir / "single-step3.bin");
    check(a.state.step == cut && a.state.loader_position == b.state.loader_position &&
              a.state.optimizer_steps == b.state.optimizer_steps,
          file_of(stage, cut) + ": step, data position and optimizer steps are Single's");
    const double ep = slm::test::relative_error(a.params, b.params);
    const double em = slm::test::relative_error(a.first_moment, b.first_moment);
    const double ev = slm::test::relative_error(a.second_moment, b.second_moment);
    check(ep < tolerance && em < tolerance && ev < tolerance,
          file_of(stage, cut) + " written by 4 ranks holds Single's weights and moments (" +
              sci(ep) + ", " + sci(em) + ", " + sci(ev) + ")");
}

int save(const std::vector<fs::path>& shards, const fs::path& dir, const Mpi& comm) {
    Checker check{comm.rank()};
    if (comm.rank() == 0) {
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    comm.barrier();
    save_run<slm::parallel::Zero<1, Mpi>>(1, shards, dir, comm);
    save_run<slm::parallel::Zero<2, Mpi>>(2, shards, dir, comm);
    save_run<slm::parallel::Zero<3, Mpi>>(3, shards, dir, comm);
    if (comm.rank() == 0) {
        train_single(shards, dir / "single", cut, dir / "single-step3.bin");
        for (int stage = 1; stage <= 3; ++stage) check_same_as_single(stage, dir, check);
    }
    return check.failures;
}

template <class Policy>
void resume_one(int stage, const std::vector<fs::path>& shards, const fs::path& dir,
                const std::vector<double>& single, const Mpi& comm, Checker& check) {
    const int64_t per_rank = global_batch / comm.world_size();
    slm::Trainer<Model, Policy> t(small(), run(dir / "resumed", per_rank), Policy(comm));
    slm::data::Loader data(shards, {per_rank, 16, 7, comm.rank(), comm.world_size()});
    t.resume(dir / file_of(stage, cut), data);
    const bool at_cut = t.step() == cut;
    t.train_step(data);
    std::vector<double> p(t.model().layout().total());
    t.model().get_parameters(p.data());  // collective under Zero<3>
    const auto unbroken = slm::load_checkpoint<double>(dir / file_of(stage, steps));
    const double e_run = slm::test::relative_error(p, unbroken.params);
    const double e_single = slm::test::relative_error(p, single);
    const std::string what = file_of(stage, cut) + " resumed by " + std::string(Policy::name) +
                             " at " + std::to_string(comm.world_size()) + " ranks";
    check(at_cut, what + ": continues from step 3");
    check(e_run < tolerance && e_single < tolerance,
          what + ": step 4 weights equal the unbroken 4-rank run's (relative error " + sci(e_run) +
              ") and Single's (" + sci(e_single) + ")");
}

int resume(const std::vector<fs::path>& shards, const fs::path& dir, const Mpi& comm) {
    Checker check{comm.rank()};
    slm::test::TempDir single_out("zero-resume-single-rank" + std::to_string(comm.rank()));
    const std::vector<double> single = train_single(shards, single_out.path, steps);
    for (int stage = 1; stage <= 3; ++stage) {
        resume_one<slm::parallel::Ddp<Mpi>>(stage, shards, dir, single, comm, check);
        resume_one<slm::parallel::Zero<1, Mpi>>(stage, shards, dir, single, comm, check);
        resume_one<slm::parallel::Zero<2, Mpi>>(stage, shards, dir, single, comm, check);
        resume_one<slm::parallel::Zero<3, Mpi>>(stage, shards, dir, single, comm, check);
    }
    return check.failures;
}

}  // namespace

int main(int argc, char** argv) {
    Mpi comm;
    const int rank = comm.rank();
    const std::string mode = argc > 1 ? argv[1] : "";
    if (argc != 4 || (mode != "save" && mode != "resume")) {
        std::printf("usage: zero_checkpoint_resume save|resume DIR RANKS\n");
        return 2;
    }
    int failures = comm.world_size() == std::atoi(argv[3]) ? 0 : 1;
    if (failures) std::printf("rank %d: FAILED: %d ranks, expected %s\n", rank, comm.world_size(), argv[3]);
    try {
        slm::test::TempDir tokens_dir("zero-checkpoint-rank" + std::to_string(rank));
        std::vector<int32_t> tokens(20000);
        for (size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = static_cast<int32_t>((i * 5 + (i / 11) * 7) % 64);
        slm::data::write_shard(tokens_dir.path / "tokens.bin", tokens, 64);
        const std::vector<fs::path> shards{tokens_dir.path / "tokens.bin"};
        failures += mode == "save" ? save(shards, argv[2], comm) : resume(shards, argv[2], comm);
    } catch (const slm::Error& e) {
        std::printf("rank %d: FAILED with error: %s\n", rank, e.what());
        failures += 1;
    }
    return failures == 0 ? 0 : 1;
}
