// The installed-package test's consumer: every piece a library user touches, from the installed
// headers and CMake targets only. Trains a SentencePiece tokenizer (libsentencepiece_train) on a
// small generated text, encodes it (libsentencepiece), writes a token shard, and trains a model
// of its own shape for a few steps on the CPU, with metrics and a checkpoint (xxhash).
//
//   consumer WORK_DIR
//
// Prints "consumer: validation loss A -> B" and exits 0 when B < 0.7 A; 1 when the loss did not
// fall or on an error; 2 on usage.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "slm/data/loader.hpp"
#include "slm/data/shard.hpp"
#include "slm/data/tokenizer.hpp"
#include "slm/slm.hpp"
#include "slm/train/trainer.hpp"

namespace fs = std::filesystem;

namespace {

// Sentences of a small grammar: text with structure a model learns in tens of steps.
std::string generated_text(int sentences) {
    const std::vector<std::string> who = {"the cat", "a dog", "the old farmer", "my sister", "a small bird"};
    const std::vector<std::string> did = {"sat on", "ran to", "looked at", "walked past", "sang near"};
    const std::vector<std::string> what = {"the mat", "the river", "a green hill", "the red barn", "the gate"};
    std::mt19937 rng(11);
    auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
    std::string text;
    for (int i = 0; i < sentences; ++i) text += pick(who) + " " + pick(did) + " " + pick(what) + ".\n";
    return text;
}

int run(const fs::path& work) {
    fs::create_directories(work / "data");
    const std::string text = generated_text(3000);
    std::ofstream(work / "corpus.txt") << text;
    slm::data::Tokenizer::train({work / "corpus.txt"}, work / "data" / "tokenizer", 300);
    const slm::data::Tokenizer tokenizer(work / "data" / "tokenizer.model");

    slm::ModelConfig model;
    model.name = "consumer";
    model.vocab = tokenizer.vocab_size();
    model.hidden = 64;
    model.layers = 2;
    model.heads = 4;
    model.kv_heads = 2;
    model.ffn = 172;
    model.max_seq = 32;
    model.validate();

    slm::RunConfig run;
    run.batch = 8;
    run.seq = 32;
    run.steps = 40;
    run.lr = 1e-2;
    run.min_lr = 1e-3;
    run.warmup = 4;
    run.log_interval = 10;
    run.eval_interval = 20;
    run.eval_batches = 4;
    run.out_dir = work / "run";

    slm::data::write_shard(work / "data" / "tokens.bin", tokenizer.encode(text), model.vocab);
    slm::data::Loader loader({work / "data" / "tokens.bin"},
                             {.batch = run.batch, .seq = run.seq, .seed = run.seed});
    using Model = slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash>;
    slm::Trainer<Model> trainer(model, run);
    const double before = trainer.evaluate(loader);
    const double after = trainer.fit(loader);
    std::printf("consumer: validation loss %.4f -> %.4f after %lld steps\n", before, after,
                static_cast<long long>(trainer.step()));
    if (!fs::exists(run.out_dir / "checkpoint.bin")) {
        std::fprintf(stderr, "consumer: no checkpoint.bin in %s\n", run.out_dir.c_str());
        return 1;
    }
    if (!(after < 0.7 * before)) {
        std::fprintf(stderr, "consumer: the validation loss did not fall below 0.7 of its start\n");
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: consumer WORK_DIR\n");
        return 2;
    }
    try {
        return run(argv[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "consumer: %s\n", e.what());
        return 1;
    }
}
