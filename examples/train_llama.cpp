// train_llama: the main job. Trains a LLaMA preset on token shards made by prepare_data, with
// progress lines, periodic validation, checkpoints and exact resume; alone or data-parallel
// (--parallel ddp|zero1|zero2|zero3) over ranks started by mpirun, srun, torchrun or --nproc.
//
//   train_llama --preset tiny --data data/kjv --out runs/tiny --steps 300
//   train_llama --preset tiny --data data/kjv --out runs/tiny --parallel ddp --nproc 2 --batch 8
//   train_llama --init-from hf/model --data data/kjv   # a Hugging Face LLaMA's config and weights
//   train_llama --preset tiny --precision fp8          # FP8 linear layers; casts counted per layer
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "cli.hpp"
#include "device_choice.hpp"
#include "launch_local.hpp"
#include "list_names.hpp"
#include "model_choice.hpp"
#include "parallel_choice.hpp"
#include "slm/core/config_io.hpp"
#include "slm/data/find_shards.hpp"
#include "slm/names.hpp"
#include "slm/parallel/transport/data_fingerprint.hpp"
#include "slm/parallel/transport/launch.hpp"
#include "slm/slm.hpp"
#include "slm/study/grid.hpp"
#include "slm/train/run_summary.hpp"
#include "train_job.hpp"
#if defined(__CUDACC__)  // built by nvcc when the CUDA toolkit is there: the GPU backend too
#include <cuda_runtime.h>
#endif

namespace fs = std::filesystem;

namespace {

slm::cli::Flags make_flags() {
    return slm::cli::Flags(
        "train_llama", "train a small LLaMA on token shards (prepare_data makes them)",
        {{"--preset", "tiny", "model: " + slm::names::joined(slm::names::preset_names())},
         {"--model", "", "a Hugging Face LLaMA config.json (or its directory) instead of a preset"},
         {"--init-from", "", "start from this Hugging Face directory's weights (its config.json is the "
                             "model unless --model or --preset says otherwise)"},
         {"--attention", "flash", "attention policy: " + slm::names::joined(slm::names::attention_names()) +
                                  " (flash_deterministic, GPU: the same bits on every run, a "
                                  "slower backward; CPU: flash)"},
         {"--precision", "bf16", "what the blocks' linear layers multiply in: " +
                                     slm::names::joined(slm::names::precision_names()) +
                                     " (GPU: bf16, or FP8 E4M3/E5M2 through cuBLASLt; CPU: fp32, or "
                                     "FP8 emulated exactly); fp8 counts every value its casts "
                                     "could not hold into <out>/fp8_casts.json"},
         {"--device", "auto", "auto|cpu|cuda"},
         {"--data", "data/kjv", "directory with tokens*.bin from prepare_data"},
         {"--out", "", "run directory for metrics.jsonl and checkpoint.bin (default runs/<preset>)"},
         {"--resume", "false", "continue from <out>'s newest checkpoint that verifies (settings "
                               "that differ from the checkpoint's are refused; --steps may grow)", true},
         {"--overwrite", "false", "start over in an --out that holds a run, removing its "
                                  "checkpoints and metrics", true},
         {"--allow-change", "", "comma list of settings a --resume may change (e.g. lr,seed), "
                                "as the refusal names them"},
         {"--batch", "16", "sequences per micro-batch on each rank; one optimizer step takes "
                           "batch x ranks x grad-accum sequences (the global batch)"},
         {"--seq", "", "tokens per sequence (default: the preset's max_seq)"},
         {"--grad-accum", "1", "micro-batches per optimizer step"},
         {"--steps", "120", "optimizer steps"},
         {"--lr", "3e-3", "peak learning rate"},
         {"--min-lr", "", "final learning rate of the cosine (default lr/10)"},
         {"--warmup", "12", "linear warmup steps"},
         {"--weight-decay", "0.1", "AdamW decoupled weight decay on matrices"},
         {"--clip", "1.0", "global gradient-norm clipping (0: off)"},
         {"--log-interval", "10", "steps between progress lines"},
         {"--eval-interval", "40", "steps between validation losses (0: start and end only)"},
         {"--eval-batches", "8", "validation batches per evaluation"},
         {"--checkpoint-interval", "40", "steps between checkpoints (0: end only)"},
         {"--checkpoint-minutes", "30", "also save when this many minutes passed since the last "
                                        "save (0: off)"},
         {"--keep-checkpoints", "2", "numbered checkpoints kept in --out, the newest; "
                                     "<out>/checkpoint.bin links to the newest"},
         {"--checkpoint-segment-mib", "256", "checkpoints are written and summed in segments of this "
                                             "size, by several threads (and data-parallel ranks) at once"},
         {"--checkpoint-when-busy", "defer", "defer|wait: a save due while the previous one is still "
                                             "being written is taken after that write ends (defer: "
                                             "training never waits for the disk) or waits for it"},
         {"--profile", "0", "time this many steps op by op after the first, and print where the time goes"},
         {"--seed", "1234", "seed for initialisation and data order"},
         {"--gemm-candidates", "1", "GPU: cuBLASLt algorithms timed per GEMM shape, the fastest kept "
                                    "(1: the heuristic's choice, the same bits on every run; 8: up "
                                    "to 2% faster, picks kept in <out>/gemm_choices.txt and "
                                    "replayed by --resume)"},
         {"--gemm-choices", "", "GPU: replay the GEMM algorithm picks in this file if it exists, "
                                "and keep this run's there (a tuned run repeated bit for bit)"},
         {"--recompute", "none", "none|swiglu: swiglu keeps no SwiGLU output for the backward, which "
                                 "writes it again (same results; layers x batch x seq x ffn "
                                 "activations less, 5.1 GiB at llama_2b batch 8, about 1% slower)"},
         {"--parallel", "single", slm::names::joined(slm::names::parallel_names()) +
                                  ": train alone, or data-parallel over the ranks a launcher "
                                  "started (CPU: over MPI, GPU: over NCCL)"},
         {"--nproc", "1", "start this many ranks on this machine (GPU: one per GPU; CPU: under "
                          "mpirun); not under another launcher"},
         {"--list-names", "false", "print the names this program takes (presets with their "
                                   "shapes, attention and parallel policies) as JSON, and exit",
          true}});
}
}  // namespace

int main(int argc, char** argv) {
    auto flags = make_flags();
    int rank = 0, ranks = 1;  // for messages: only rank 0 prints the usage
    try {
        if (!flags.parse(argc, argv)) return 0;
        if (flags.on("--list-names")) {
            std::printf("%s\n", slm::cli::names_json().c_str());
            return 0;
        }
        // Started by mpirun, srun or a torchrun-style launcher? Inconsistent launcher variables
        // are an error here rather than a silent single-process run.
        const slm::parallel::LaunchInfo launch = slm::parallel::from_environment();
        rank = launch.rank;
        ranks = launch.world_size;
        const std::string parallel =
            flags.choice("--parallel", slm::names::parallel_names());
        const int nproc = static_cast<int>(flags.integer("--nproc", 1));
        if (flags.given("--nproc") && (launch.launcher == slm::parallel::Launcher::openmpi ||
                                       launch.launcher == slm::parallel::Launcher::torchrun ||
                                       !launch.alone()))
            throw slm::cli::UsageError(
                "--nproc starts its own ranks, but this process is already rank " +
                std::to_string(launch.rank) + " of " + std::to_string(launch.world_size) +
                " started by " + std::string(slm::parallel::launcher_name(launch.launcher)) +
                ": drop --nproc and let the launcher start the ranks, or start train_llama "
                "--nproc N once, without a launcher");
        const int world = nproc > 1 ? nproc : launch.world_size;
        if (world > 1 && parallel == slm::parallel::Single::name)
            throw slm::cli::UsageError(
                "--parallel single trains one process alone, but this job has " +
                std::to_string(world) + " ranks (" +
                (nproc > 1 ? std::string("--nproc ") + std::to_string(nproc)
                           : "rank " + std::to_string(launch.rank) + " started by " +
                                 std::string(slm::parallel::launcher_name(launch.launcher))) +
                "), and each would train the same model alone into the same --out: pass "
                "--parallel ddp (or zero1|zero2|zero3) to train data-parallel, or start one "
                "process");
        const std::string device = flags.choice("--device", {"auto", "cpu", "cuda"});
        if (device == "cuda" && !slm::cli::built_with_cuda())
            throw slm::cli::UsageError(
                "--device cuda: this build of train_llama has no CUDA backend (build with the "
                "cuda preset on a machine with nvcc), or use --device cpu");
        if (device == "cuda" && !slm::cli::gpu_present())
            throw slm::cli::UsageError("--device cuda: no GPU is visible (check nvidia-smi and "
                                       "CUDA_VISIBLE_DEVICES), or use --device cpu");
        const bool on_gpu = device == "cuda" || (device == "auto" && slm::cli::gpu_present());
        if (!on_gpu && parallel != slm::parallel::Single::name && !slm::cli::built_with_mpi())
            throw slm::Error("--parallel " + parallel +
                             " on the CPU backend: its ranks talk over MPI, and this train_llama "
                             "was built without MPI (CMake found none): " +
                             std::string(slm::parallel::no_mpi_fix) +
                             "; or train on GPUs (--device cuda)");
        const std::string attention = flags.choice("--attention", slm::names::attention_names());
        const std::string precision = flags.choice("--precision", slm::names::precision_names());
        const slm::cli::ModelChoice choice = slm::cli::choose_model(flags, launch.rank == 0);
        const slm::ModelConfig& model = choice.config;
        const std::string& preset = model.name;
        slm::RunConfig run;
        run.batch = flags.integer("--batch", 1);
        run.seq = flags.given("--seq") ? flags.integer("--seq", 1) : model.max_seq;
        if (run.seq > model.max_seq)
            throw slm::cli::UsageError("--seq " + std::to_string(run.seq) +
                                       " is longer than model " + preset + "'s max_seq " +
                                       std::to_string(model.max_seq));
        run.grad_accum = flags.integer("--grad-accum", 1);
        run.steps = flags.integer("--steps", 1);
        run.lr = flags.real("--lr", 0, true);
        run.min_lr = flags.given("--min-lr") ? flags.real("--min-lr", 0) : run.lr / 10;
        if (run.min_lr > run.lr)
            throw slm::cli::UsageError("--min-lr " + flags.text("--min-lr") + " is above --lr " +
                                       flags.text("--lr") + ": the cosine decays from --lr to --min-lr");
        run.warmup = flags.integer("--warmup", 0);
        run.adamw.weight_decay = flags.real("--weight-decay", 0);
        run.adamw.max_grad_norm = flags.real("--clip", 0);
        run.log_interval = flags.integer("--log-interval", 1);
        run.eval_interval = flags.integer("--eval-interval", 0);
        run.eval_batches = flags.integer("--eval-batches", 1);
        run.checkpoint_interval = flags.integer("--checkpoint-interval", 0);
        run.checkpoint_minutes = flags.real("--checkpoint-minutes", 0);
        run.keep_checkpoints = flags.integer("--keep-checkpoints", 1);
        run.checkpoint_segment_bytes = static_cast<uint64_t>(flags.real("--checkpoint-segment-mib", 1e-4) * 1048576.0);
        run.when_busy = slm::when_busy_from_name(flags.choice("--checkpoint-when-busy", {"defer", "wait"}));
        run.overwrite = flags.on("--overwrite");
        if (run.overwrite && flags.on("--resume"))
            throw slm::cli::UsageError("--resume continues the run in --out and --overwrite removes "
                                       "it: give one of them");
        for (const auto& name : slm::study::split_list(flags.text("--allow-change"))) {
            if (!slm::run_summary(model, run, "").has(name))
                throw slm::cli::UsageError("--allow-change: '" + name + "' is not a run setting");
            run.allow_changes.push_back(name);
        }
        run.seed = static_cast<uint64_t>(flags.integer("--seed", 0));
        run.precision = precision;  // the Trainer sets the same from the model's type
        run.profile_steps = flags.integer("--profile", 0);
        run.backend.gemm_candidates = flags.integer("--gemm-candidates", 1);
        if (run.backend.gemm_candidates > 16) throw slm::cli::UsageError("--gemm-candidates must be in [1, 16]");
        run.recompute = slm::recompute_from_name(flags.choice("--recompute", {"none", "swiglu"}));
        run.out_dir = flags.given("--out") ? fs::path(flags.text("--out")) : fs::path("runs") / preset;
        if (flags.given("--gemm-choices")) {
            run.backend.gemm_choices_read = run.backend.gemm_choices_write = fs::path(flags.text("--gemm-choices"));
        } else {
            run.backend.gemm_choices_write = run.out_dir / "gemm_choices.txt";
            if (flags.on("--resume")) run.backend.gemm_choices_read = run.backend.gemm_choices_write;
            run.backend.gemm_choices_other_gpu_ok = true;  // a run moved to another machine resumes
        }
        if (flags.on("--resume") && !slm::RunDirectory::has_checkpoint(run.out_dir))
            throw slm::cli::UsageError("--resume: there is no checkpoint in " +
                                       run.out_dir.string() + " to resume from (check --out)");
        const std::vector<fs::path> shards = slm::data::find_shards(flags.text("--data"));
        run.data_fingerprint = slm::parallel::data_fingerprint(shards);

        // The run directory, before anything big is built: locked against a second run, writable,
        // and not holding a run that this one would clobber (rank 0 and --nproc's launcher only).
        std::optional<slm::RunDirectory> out_dir;
        if (launch.rank == 0) {
            out_dir.emplace(run.out_dir);
            if (!flags.on("--resume") && !run.overwrite && out_dir->holds_run())
                throw slm::cli::UsageError(slm::RunDirectory::holds_run_refusal(run.out_dir));
            if (nproc > 1) out_dir.reset();  // the ranks lock it themselves
        }

        if (nproc > 1) {  // this process starts the ranks and waits for them
            const auto args = slm::cli::arguments_without(argc, argv, "--nproc");
            const std::string self = slm::cli::this_program(argv[0]);
            if (!on_gpu) slm::cli::exec_under_mpirun(self, args, nproc, "train_llama --nproc");
#if defined(__CUDACC__)
            int gpus = 0;
            if (cudaGetDeviceCount(&gpus) != cudaSuccess) gpus = 0;
            if (nproc > gpus)
                throw slm::cli::UsageError(
                    "--nproc " + std::to_string(nproc) + " starts one rank per GPU, but " +
                    std::to_string(gpus) + " GPU(s) are visible (CUDA_VISIBLE_DEVICES): use "
                    "--nproc " + std::to_string(gpus) + " or fewer, or --device cpu");
#endif
            return slm::cli::run_local_ranks(self, args, nproc, "train_llama --nproc");
        }

        const train_job::Job job{flags, model, run, shards, attention, precision,
                                 flags.on("--resume") ? fs::path() : choice.init_from};
        // What every rank must agree on before the first step (checked when the ranks start).
        slm::parallel::ConfigSummary config;
        if (parallel != slm::parallel::Single::name) {
            config = slm::run_summary(model, run, run.data_fingerprint);
            config.add("parallel", parallel);
            config.add("attention", attention);
            config.add("device", on_gpu ? "cuda" : "cpu");
            config.add("resume", flags.on("--resume"));
            config.add("init_from", job.init_from.string());
        }
#if defined(__CUDACC__)
        if (on_gpu) {
            using Gpu = slm::cuda::Backend;
            if (parallel == slm::parallel::Single::name) return train_job::train_attention<Gpu>(job, slm::parallel::Single{});
            return slm::names::with_data_parallel(parallel, slm::cli::start_gpu_ranks(launch, config),
                                         [&](auto policy) {
                                             return train_job::train_attention<Gpu>(job, std::move(policy));
                                         });
        }
#endif
        using Cpu = slm::cpu::Backend<float>;
        if (parallel == slm::parallel::Single::name) return train_job::train_attention<Cpu>(job, slm::parallel::Single{});
#if SLM_EXAMPLES_HAVE_MPI
        return slm::names::with_data_parallel(parallel, slm::cli::start_cpu_ranks(launch, config),
                                     [&](auto policy) {
                                         return train_job::train_attention<Cpu>(job, std::move(policy));
                                     });
#else
        throw slm::Error("--parallel " + parallel + " on the CPU needs MPI: " +
                         std::string(slm::parallel::no_mpi_fix));
#endif
    } catch (const slm::cli::UsageError& e) {
        if (rank == 0) std::fprintf(stderr, "train_llama: %s\n\n%s", e.what(), flags.usage().c_str());
        else std::fprintf(stderr, "train_llama: rank %d: %s\n", rank, e.what());
        return 2;
    } catch (const std::exception& e) {  // slm::Error, and what the standard library throws
        if (ranks > 1) std::fprintf(stderr, "train_llama: rank %d: error: %s\n", rank, e.what());
        else std::fprintf(stderr, "train_llama: error: %s\n", e.what());
        std::fflush(stderr);
        slm::cli::end_every_rank_at_exit();
        return 1;
    }
}
