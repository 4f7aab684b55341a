// library_use: slm as a library, the program README's "Using the library" shows. A model of its
// own shape (not a preset), a run, a loader over token shards and a trainer, trained on the CPU.
//
//   library_use [WORK_DIR]
//
// Writes one token shard to WORK_DIR/data (prepare_data makes shards from text; here a sequence
// a model can learn: each token follows from the one before, one in ten is random), trains 60
// steps into WORK_DIR/run (metrics.jsonl, checkpoint.bin) and checks the validation loss fell to
// under half its starting value. Without WORK_DIR it works in a fresh temporary directory and
// removes it. Exit status: 0 when the loss fell, 1 when it did not or on an error.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "slm/data/find_shards.hpp"
#include "slm/data/loader.hpp"
#include "slm/data/shard.hpp"
#include "slm/slm.hpp"
#include "slm/train/trainer.hpp"

namespace fs = std::filesystem;

namespace {

// n tokens in [0, vocab): token i + 1 = 5 · token i + 1 (mod vocab), except one in ten, drawn at
// random. The best loss is about 0.9 nats (the random tenth), far under ln(vocab).
std::vector<int32_t> learnable_tokens(int64_t n, int64_t vocab) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(vocab - 1));
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    int32_t t = 0;
    for (auto& token : tokens) {
        t = rng() % 10 == 0 ? any(rng) : static_cast<int32_t>((5 * int64_t{t} + 1) % vocab);
        token = t;
    }
    return tokens;
}

int run(const fs::path& work) {
    // The model: ModelConfig field by field (slm::presets::tiny() returns one of these too).
    slm::ModelConfig model;
    model.name = "library_use";
    model.vocab = 256;
    model.hidden = 64;
    model.layers = 2;
    model.heads = 4;
    model.kv_heads = 2;  // grouped-query attention
    model.ffn = 172;
    model.max_seq = 64;
    model.validate();

    // The run: batch, schedule, how often to log and validate, where metrics and checkpoints go.
    slm::RunConfig run;
    run.batch = 8;
    run.seq = 64;
    run.steps = 60;
    run.lr = 1e-2;
    run.min_lr = 1e-3;
    run.warmup = 5;
    run.log_interval = 20;
    run.eval_interval = 30;
    run.eval_batches = 4;
    run.out_dir = work / "run";
    run.overwrite = true;  // a second library_use into the same WORK_DIR starts afresh

    // The data: token shards in a directory, split into train and validation by the loader.
    fs::create_directories(work / "data");
    slm::data::write_shard(work / "data" / "tokens.bin", learnable_tokens(200'000, model.vocab),
                           model.vocab);
    slm::data::Loader loader(slm::data::find_shards(work / "data"),
                             {.batch = run.batch, .seq = run.seq, .seed = run.seed});

    // The trainer: Llama on the CPU backend with Flash attention; Single (one process) and AdamW
    // are the defaults of Trainer's other two policies.
    using Model = slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash>;
    slm::Trainer<Model> trainer(model, run);
    const double before = trainer.evaluate(loader);
    const double after = trainer.fit(loader);  // or one step at a time: trainer.train_step(loader)

    std::printf("validation loss %.4f -> %.4f after %lld steps\n", before, after,
                static_cast<long long>(trainer.step()));
    if (!(after < 0.5 * before)) {
        std::fprintf(stderr, "library_use: the validation loss did not fall to under half (%.4f -> %.4f)\n",
                     before, after);
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 2 || (argc == 2 && std::string(argv[1]).starts_with("-"))) {
        std::fprintf(stderr, "usage: library_use [WORK_DIR]\n");
        return 2;
    }
    const bool temporary = argc < 2;
    const fs::path work = temporary ? fs::temp_directory_path() /
                                          ("slm_library_use_" + std::to_string(getpid()))
                                    : fs::path(argv[1]);
    int status = 1;
    try {
        status = run(work);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "library_use: %s\n", e.what());
    }
    if (temporary) {
        std::error_code ignored;
        fs::remove_all(work, ignored);
    }
    return status;
}
