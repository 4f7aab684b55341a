// Trainer: learning, exact resume from a checkpoint, and bad input that must fail loudly and
// leave earlier files intact.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "common/error_text.hpp"
#include "common/synthetic_data.hpp"
#include "slm/slm.hpp"
#include "slm/data/shard.hpp"
#include "slm/train/trainer.hpp"

namespace {

namespace fs = std::filesystem;
using slm::test::error_of;
using CpuModel = slm::Llama<slm::cpu::Backend<float>, slm::attention::Flash>;
using CpuTrainer = slm::Trainer<CpuModel>;

slm::ModelConfig small() {
    slm::ModelConfig c;
    c.name = "trainer-test";
    c.vocab = 50;
    c.hidden = 32;
    c.layers = 2;
    c.heads = 2;
    c.kv_heads = 1;
    c.ffn = 64;
    c.max_seq = 32;
    return c;
}

slm::RunConfig run_in(const fs::path& dir, int64_t steps) {
    slm::RunConfig r;
    r.batch = 4;
    r.seq = 16;
    r.grad_accum = 2;
    r.steps = steps;
    r.lr = 3e-3;
    r.min_lr = 3e-4;
    r.warmup = 5;
    r.log_interval = 1000;
    r.eval_interval = 0;
    r.eval_batches = 2;
    r.out_dir = dir;
    return r;
}

fs::path fresh_dir(const char* name) {
    const auto d = fs::temp_directory_path() / (std::string("slm-test-") + name + "-" +
                                                std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}


}  // namespace

// FP8 keeps state from call to call (its delayed scales' amax histories); the trainer starts it
// afresh after each save and each resume, so the two runs still match bit for bit.
TEST_CASE_TEMPLATE("trainer learns a pattern and resume reproduces the uninterrupted run exactly", Precision,
                   slm::precision::Bf16, slm::precision::Fp8) {
    using Trainer = slm::Trainer<CpuModel::with_precision<Precision>>;
    const auto dir = fresh_dir("resume");
    const int64_t total = 12, cut = 5;

    slm::test::SyntheticData data_a(50, 4, 16);
    Trainer a(small(), run_in(dir / "a", total));
    std::vector<double> uninterrupted;
    for (int64_t s = 0; s < total; ++s) {
        uninterrupted.push_back(a.train_step(data_a).loss);
        if (a.step() == cut) a.save_checkpoint(dir / "cut.bin", data_a.position());
    }
    CHECK(uninterrupted.back() < uninterrupted.front() - 0.3);

    slm::test::SyntheticData data_b(50, 4, 16);
    Trainer b(small(), run_in(dir / "b", total));
    b.resume(dir / "cut.bin", data_b);
    CHECK(b.step() == cut);
    for (int64_t s = cut; s < total; ++s) CHECK(b.train_step(data_b).loss == uninterrupted[s]);
    fs::remove_all(dir);
}

TEST_CASE("fit writes metrics and a checkpoint, and validation loss falls") {
    const auto dir = fresh_dir("fit");
    slm::test::SyntheticData data(50, 4, 16);
    auto run = run_in(dir, 30);
    run.eval_interval = 10;
    CpuTrainer t(small(), run);
    const double first = t.evaluate(data);
    const double last = t.fit(data);
    CHECK(last < first - 0.5);
    CHECK(fs::exists(dir / "checkpoint.bin"));
    std::ifstream metrics(dir / "metrics.jsonl");
    int lines = 0;
    for (std::string l; std::getline(metrics, l);) lines += l.find("val_loss") != std::string::npos;
    CHECK(lines == 4);  // steps 0, 10, 20, 30
    fs::remove_all(dir);
}

TEST_CASE("bad checkpoints and configs fail with a clear error") {
    const auto dir = fresh_dir("bad");
    slm::test::SyntheticData data(50, 4, 16);
    CpuTrainer t(small(), run_in(dir, 3));
    t.train_step(data);
    t.save_checkpoint(dir / "good.bin", data.position());

    // Missing file.
    CHECK(error_of([&] { t.resume(dir / "nope.bin", data); }).find("cannot open checkpoint") !=
          std::string::npos);

    // Truncated, and one flipped byte.
    const auto size = fs::file_size(dir / "good.bin");
    fs::copy_file(dir / "good.bin", dir / "short.bin");
    fs::resize_file(dir / "short.bin", size - 100);
    CHECK(error_of([&] { t.resume(dir / "short.bin", data); }).find("truncated") != std::string::npos);
    fs::copy_file(dir / "good.bin", dir / "flipped.bin");
    {
        std::fstream f(dir / "flipped.bin", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(size / 2));
        char c;
        f.read(&c, 1);
        f.seekp(static_cast<std::streamoff>(size / 2));
        c = static_cast<char>(c ^ 0x10);
        f.write(&c, 1);
    }
    CHECK(error_of([&] { t.resume(dir / "flipped.bin", data); }).find("checksum") != std::string::npos);

    // A bit flipped in a size field (the element count n, or the config text's length) is found
    // against the file's size before anything is allocated: an error naming the file.
    const auto flip_bit = [&](const char* name, uint64_t offset, int bit) {
        fs::copy_file(dir / "good.bin", dir / name);
        std::fstream f(dir / name, std::ios::in | std::ios::out | std::ios::binary);
        char c;
        f.seekg(static_cast<std::streamoff>(offset));
        f.read(&c, 1);
        c = static_cast<char>(c ^ (1 << bit));
        f.seekp(static_cast<std::streamoff>(offset));
        f.write(&c, 1);
    };
    uint64_t text_bytes = 0, settings_bytes = 0;
    {
        std::ifstream f(dir / "good.bin", std::ios::binary);
        f.seekg(16);
        f.read(reinterpret_cast<char*>(&text_bytes), sizeof text_bytes);
        f.seekg(static_cast<std::streamoff>(24 + text_bytes));
        f.read(reinterpret_cast<char*>(&settings_bytes), sizeof settings_bytes);
    }
    // magic, version, width, config length and text, settings length and text, 5 state fields
    const uint64_t n_at = 24 + text_bytes + 8 + settings_bytes + 40;
    for (int bit : {0, 5, 30}) {
        const std::string name = "count" + std::to_string(bit) + ".bin";
        flip_bit(name.c_str(), n_at + bit / 8, bit % 8);
        const std::string why = error_of([&] { t.resume(dir / name, data); });
        CHECK(why.find(name) != std::string::npos);
        CHECK(why.find("corrupted") != std::string::npos);
    }
    flip_bit("text.bin", 16 + 3, 1);  // the config length becomes ~33 MB
    CHECK(error_of([&] { t.resume(dir / "text.bin", data); }).find("corrupted (config size") != std::string::npos);
    // Bytes after the checksum are damage too, not ignored.
    fs::copy_file(dir / "good.bin", dir / "trailing.bin");
    std::ofstream(dir / "trailing.bin", std::ios::app | std::ios::binary) << "tail";
    CHECK(error_of([&] { t.resume(dir / "trailing.bin", data); }).find("4 bytes after its checksum") != std::string::npos);

    // A checkpoint of another model names the differing field.
    auto other = small();
    other.hidden = 64;
    CpuTrainer u(other, run_in(dir, 3));
    const std::string e = error_of([&] { u.resume(dir / "good.bin", data); });
    CHECK(e.find("another model") != std::string::npos);
    CHECK(e.find("hidden: 32 vs 64") != std::string::npos);

    // seq longer than the model's max_seq.
    auto long_run = run_in(dir, 3);
    long_run.seq = 64;
    CHECK(error_of([&] { CpuTrainer x(small(), long_run); }).find("max_seq") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("a checkpoint that cannot be written leaves the previous one intact") {
    const auto dir = fresh_dir("unwritable");
    slm::test::SyntheticData data(50, 4, 16);
    CpuTrainer t(small(), run_in(dir, 3));
    t.train_step(data);
    const auto path = dir / "checkpoint.bin";
    t.save_checkpoint(path, data.position());
    std::ifstream before_file(path, std::ios::binary);
    const std::string before((std::istreambuf_iterator<char>(before_file)), {});
    t.train_step(data);

    // Root ignores permission bits, so also block the temporary file's name with a directory:
    // either way the write must fail and the old checkpoint must survive byte for byte.
    fs::create_directory(path.string() + ".tmp." + std::to_string(::getpid()));
    ::chmod(dir.c_str(), 0555);
    const std::string e = error_of([&] { t.save_checkpoint(path, data.position()); });
    ::chmod(dir.c_str(), 0755);
    CHECK(e.find("cannot write") != std::string::npos);
    std::ifstream after_file(path, std::ios::binary);
    const std::string after((std::istreambuf_iterator<char>(after_file)), {});
    CHECK(after == before);
    slm::test::SyntheticData again(50, 4, 16);
    CpuTrainer r(small(), run_in(dir, 3));
    r.resume(path, again);
    CHECK(r.step() == 1);
    fs::remove_all(dir);
}

TEST_CASE("RunConfig.recompute reaches the model and trains to the same losses") {
    const auto dir = fresh_dir("recompute");
    slm::test::SyntheticData data_a(50, 4, 16), data_b(50, 4, 16);
    auto run = run_in(dir / "a", 4);
    CpuTrainer keeps(small(), run);
    run.recompute = slm::Recompute::swiglu;
    run.out_dir = dir / "b";
    CpuTrainer recomputes(small(), run);
    CHECK(keeps.model().recompute() == slm::Recompute::none);
    CHECK(recomputes.model().recompute() == slm::Recompute::swiglu);
    CHECK(recomputes.model().activation_bytes(4, 16) < keeps.model().activation_bytes(4, 16));
    for (int s = 0; s < 4; ++s) CHECK(keeps.train_step(data_a).loss == recomputes.train_step(data_b).loss);
    fs::remove_all(dir);
}

TEST_CASE("fit and evaluate given a Loader validate on its rank split, as train_llama does") {
    const auto dir = fresh_dir("loader");
    std::vector<int32_t> tokens(20000);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(slm::splitmix64(i) % 50);
    slm::data::write_shard(dir / "tokens_000.bin", tokens, 50);
    // Enough validation batches asked for that a short last one would count if it were offered:
    // the split offers whole ones only (data::RankData), and so must a Loader handed over bare.
    auto run = run_in(dir / "a", 6);
    run.eval_batches = 1000;
    auto run_b = run;
    run_b.out_dir = dir / "b";
    slm::data::LoaderConfig lc{run.batch, run.seq, 7};
    slm::data::Loader bare(std::vector<fs::path>{dir / "tokens_000.bin"}, lc);
    slm::data::Loader wrapped(std::vector<fs::path>{dir / "tokens_000.bin"}, lc);
    slm::data::RankData split(wrapped);
    CpuTrainer a(small(), run), b(small(), run_b);
    CHECK(a.evaluate(bare) == b.evaluate(split));
    CHECK(a.fit(bare) == b.fit(split));
    fs::remove_all(dir);
}
